"""Each worker listens on a socket of its own (service.sockets), on real sockets."""

from __future__ import annotations

import os
import socket

import pytest
from circus.sockets import CircusSocket

from service.sockets import API_SOCKET, inherited_socket_fd, listen_alone, reuse_port


def _listening(reuse: bool) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


def _accepts(sock: socket.socket, address: tuple) -> bool:
    client = socket.create_connection(address, timeout=5)
    sock.settimeout(5)
    try:
        conn, _ = sock.accept()
        conn.close()
        return True
    finally:
        client.close()


@pytest.mark.parametrize("argv,expected", [
    (["python", "-m", "_bentoml_impl.worker.service", "--fd", "7", "x"], 7),
    (["python", "--fd=12"], 12),
    (["python", "--fd", "seven"], None),
    (["python", "--fd"], None),
    (["python", "--port", "3000"], None),
])
def test_the_worker_finds_its_inherited_socket_in_its_arguments(argv, expected):
    assert inherited_socket_fd(argv) == expected


def test_a_worker_serves_its_own_socket_on_the_shared_address():
    shared = _listening(reuse=True)
    address = shared.getsockname()
    fd = os.dup(shared.fileno())  # what a worker inherits
    try:
        assert listen_alone(fd)
        own = socket.socket(fileno=fd)
        assert own.getsockname() == address
        # the shared socket no longer takes connections: all go to the worker's own
        for _ in range(8):
            assert _accepts(own, address)
        shared.setblocking(False)
        with pytest.raises(OSError):
            shared.accept()
        # a second worker (or a respawned one) binds the same address
        fd2 = os.dup(shared.fileno())
        assert listen_alone(fd2)
        socket.socket(fileno=fd2).close()
        own.close()
    finally:
        shared.close()


def test_without_so_reuseport_the_shared_socket_is_left_alone():
    shared = _listening(reuse=False)
    fd = os.dup(shared.fileno())
    try:
        assert not listen_alone(fd)
        same = socket.socket(fileno=fd)
        assert _accepts(same, shared.getsockname())
        same.close()
    finally:
        shared.close()


def test_outside_a_bentoml_worker_nothing_changes():
    assert inherited_socket_fd() is None  # pytest has no --fd argument
    assert not listen_alone()


def test_serve_binds_its_http_socket_joinable_and_other_sockets_as_before():
    reuse_port()
    reuse_port()  # idempotent: one wrapper
    api = CircusSocket(name=API_SOCKET, host="127.0.0.1", port=0)
    other = CircusSocket(name="other", host="127.0.0.1", port=0)
    try:
        api.bind_and_listen()
        other.bind_and_listen()
        assert api.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
        assert not other.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
    finally:
        api.close()
        other.close()
