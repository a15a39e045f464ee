"""One listening socket per worker, so that the kernel spreads connections over workers.

BentoML's workers share the one socket its process manager (circus) binds: a worker woken
by a burst of new connections accepts every one of them, so keep-alive clients can all
land on one worker while the others idle (bentoml/BentoML#5426; measured here: 32 wrk
connections, 32 on one worker and none on the other, half the throughput). Linux's
``SO_REUSEPORT`` is the usual cure (nginx, envoy): every worker listens on its own socket
bound to the same address, and the kernel hashes each new connection to one of them.

:func:`reuse_port` (``bentoml serve``'s process, before it binds) sets the option on the
shared socket so that workers may bind the same address; :func:`listen_alone` (each
worker, before uvicorn starts) binds the worker's own socket, stops the shared one from
listening (its address stays reserved), and puts the worker's socket where BentoML's
worker reads it. Either step leaves BentoML's behaviour alone when what it expects is not
there (another launcher, a Unix socket, a platform without the option). Only processes of
the same user may join such a socket group.
"""

from __future__ import annotations

import os
import socket
import sys

from circus.sockets import CircusSocket

from service.logs import logger

# the name BentoML's serve_http gives its HTTP socket (_bentoml_impl.server.serving)
API_SOCKET = "_bento_api_server"
_FD_OPTION = "--fd"
_BACKLOG = 2048


def reuse_port() -> None:
    """Make the HTTP socket ``bentoml serve`` is about to bind joinable by its workers
    (``SO_REUSEPORT``, set before the bind). Call in the serving process before its
    process manager starts (BentoML's ``on_deployment`` hooks run then)."""
    if not hasattr(socket, "SO_REUSEPORT") or getattr(CircusSocket, "_scoring_reuse", False):
        return
    bind_and_listen = CircusSocket.bind_and_listen

    def bind_reusable(sock: CircusSocket) -> None:
        if sock.name == API_SOCKET and not sock.is_unix:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        bind_and_listen(sock)

    CircusSocket.bind_and_listen = bind_reusable
    CircusSocket._scoring_reuse = True


def inherited_socket_fd(argv: list[str] | None = None) -> int | None:
    """The descriptor of the shared socket BentoML's worker was started with (its
    ``--fd N`` argument), ``None`` when there is none."""
    args = sys.argv if argv is None else argv
    for i, arg in enumerate(args):
        value = (args[i + 1] if arg == _FD_OPTION and i + 1 < len(args)
                 else arg.removeprefix(_FD_OPTION + "=") if arg.startswith(_FD_OPTION + "=")
                 else None)
        if value is not None:
            return int(value) if value.isascii() and value.isdigit() else None
    return None


def listen_alone(fd: int | None = None) -> bool:
    """In a worker: serve a socket of its own on the shared socket's address, in place of
    the shared one (same descriptor number, which BentoML's worker hands to uvicorn next).
    ``True`` when done; ``False`` (BentoML's shared socket served as before) when there is
    no inherited TCP socket with ``SO_REUSEPORT`` set."""
    fd = inherited_socket_fd() if fd is None else fd
    if fd is None or not hasattr(socket, "SO_REUSEPORT"):
        return False
    try:
        shared = socket.socket(fileno=os.dup(fd))
    except OSError:
        return False
    with shared:
        if (shared.family not in (socket.AF_INET, socket.AF_INET6)
                or not shared.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)):
            return False
        own = socket.socket(shared.family, socket.SOCK_STREAM)
        try:
            own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            own.bind(shared.getsockname())
            own.listen(_BACKLOG)
        except OSError as exc:
            own.close()
            logger.warning("workers share one listening socket (%s)", exc)
            return False
        # the shared socket stops taking connections (the kernel would hand it a share
        # no worker accepts); bound, its address stays reserved for respawned workers.
        # Already stopped by another worker: nothing to do.
        try:
            shared.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    os.dup2(own.fileno(), fd)
    own.close()
    return True
