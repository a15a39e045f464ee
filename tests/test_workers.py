"""Worker processes: the CPUs the container may use by default, SCORING_WORKERS to choose."""

from __future__ import annotations

import json
import os
import socket

import psutil
import pytest
import requests

from service.workers import available_cpus, serving_workers

CPUS = len(os.sched_getaffinity(0))


def _cgroup_v2(root, text):
    root.mkdir(exist_ok=True)
    (root / "cpu.max").write_text(text)
    return root


def _cgroup_v1(root, quota, period):
    (root / "cpu").mkdir(parents=True)
    (root / "cpu" / "cpu.cfs_quota_us").write_text(f"{quota}\n")
    (root / "cpu" / "cpu.cfs_period_us").write_text(f"{period}\n")
    return root


@pytest.mark.parametrize("text,expected", [
    ("max 100000\n", CPUS),                 # no quota: the CPUs the process may run on
    ("100000 100000\n", 1),
    ("150000 100000\n", 1),                 # 1.5 CPUs: one worker the quota never throttles
    ("50000 100000\n", 1),                  # under one CPU: still one worker
    (f"{(CPUS + 8) * 100000} 100000\n", CPUS),  # a quota above the CPUs it may use
])
def test_cgroup_v2_quota_caps_the_cpus(tmp_path, text, expected):
    assert available_cpus(_cgroup_v2(tmp_path / "cg", text)) == expected


@pytest.mark.parametrize("quota,period,expected", [(-1, 100000, CPUS), (100000, 100000, 1),
                                                   (250000, 100000, min(2, CPUS))])
def test_cgroup_v1_quota_caps_the_cpus(tmp_path, quota, period, expected):
    assert available_cpus(_cgroup_v1(tmp_path / "cg", quota, period)) == expected


def test_unreadable_cgroup_files_fall_back_to_the_affinity(tmp_path):
    assert available_cpus(_cgroup_v2(tmp_path / "cg", "garbage")) == CPUS
    assert available_cpus(tmp_path / "absent") == CPUS


def test_scoring_workers_overrides_the_cpus(tmp_path, monkeypatch):
    root = _cgroup_v2(tmp_path / "cg", "100000 100000\n")
    monkeypatch.delenv("SCORING_WORKERS", raising=False)
    assert serving_workers(root) == 1
    monkeypatch.setenv("SCORING_WORKERS", " 3 ")
    assert serving_workers(root) == 3
    for bad in ("0", "-1", "two", "1.5", "³", "99999"):
        monkeypatch.setenv("SCORING_WORKERS", bad)
        with pytest.raises(RuntimeError, match="SCORING_WORKERS must be a positive integer"):
            serving_workers(root)


def _workers(server) -> list[psutil.Process]:
    children = psutil.Process(server.proc.pid).children(recursive=True)
    return [c for c in children if "_bentoml_impl.worker.service" in " ".join(c.cmdline())]


def test_scoring_workers_starts_that_many_workers_each_serving(servers, bundles, bento_home,
                                                                tmp_path):
    server = servers.start(None, bento_home, tmp_path / "serve.log", bundle=bundles["svc"].tag,
                           env={"SCORING_WORKERS": "2"})
    try:
        workers = _workers(server)
        assert len(workers) == 2, server.output()[-2000:]
        rows = {"rows": [[float(i) for i in range(30)]]}
        answers = [requests.post(server.url + "/predict", json=rows, timeout=30)
                   for _ in range(8)]
        assert {r.status_code for r in answers} == {200}
        assert len({r.content for r in answers}) == 1
        _connections_are_spread(server, workers, rows)
    finally:
        servers.stop(server)


def _connections_are_spread(server, workers, rows) -> None:
    """A burst of keep-alive connections (a load balancer's, wrk's) lands on every worker,
    not all on the first one awake (each worker listens on its own socket)."""
    host, port = server.url.removeprefix("http://").split(":")
    body = json.dumps(rows).encode()
    request = (f"POST /predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json"
               f"\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    clients = [socket.create_connection((host, int(port)), timeout=30) for _ in range(24)]
    try:
        for client in clients:
            client.sendall(request)
        for client in clients:
            assert client.recv(64).startswith(b"HTTP/1.1 200")
        ours = {client.getsockname()[1] for client in clients}
        held = {w.pid: sum(bool(c.raddr) and c.raddr.port in ours
                           for c in w.net_connections("tcp")) for w in workers}
        assert sum(held.values()) == len(clients)
        # the kernel hashes connections over the sockets: each worker gets a fair share
        assert min(held.values()) >= len(clients) // 6, held
    finally:
        for client in clients:
            client.close()


def test_a_bad_scoring_workers_stops_start_up(servers, bundles, bento_home, tmp_path):
    server = servers.start(None, bento_home, tmp_path / "serve.log", bundle=bundles["svc"].tag,
                           env={"SCORING_WORKERS": "many"}, wait=False)
    try:
        code = server.proc.wait(120)
    finally:
        servers.stop(server)
    output = server.output()
    assert code != 0, output[-2000:]
    # once: the log line (the exit no longer repeats it)
    assert output.count("not serving: SCORING_WORKERS must be a positive integer") == 1, \
        output[-2000:]
    assert "serving scoring bundle" not in output
