"""Starting, waiting for and stopping the helper processes tests and benchmarks run
(``bentoml serve``, Prometheus, an MLflow server): one copy of each step."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import requests


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, log: Path, what: str,
              timeout: float) -> None:
    """Wait until ``url`` answers 200; raise ``RuntimeError`` with the end of ``log`` when
    ``proc`` exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n"
                               f"{log.read_text(errors='replace')[-3000:]}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or busy starting
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{what} not ready after {timeout}s:\n"
                       f"{log.read_text(errors='replace')[-3000:]}")


def stop_process(proc: subprocess.Popen, timeout: float = 30, group: bool = False) -> None:
    """SIGTERM to ``proc`` (servers stop their own children; ``group``: to its whole process
    group, for servers whose workers do not), then SIGKILL to its process group (started
    with ``start_new_session=True``) after ``timeout`` seconds."""
    if proc.poll() is None:
        if group:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def run_side_by_side(commands: Sequence[Sequence[str]], timeout: float,
                     **options) -> list[subprocess.CompletedProcess]:
    """Run independent ``commands`` at once (``options``: Popen's, say ``env`` or ``cwd``),
    their output captured as text; each one's result, in order. Most of a command's time
    is its imports: two at a time use both cores."""
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, **options) for command in commands]
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def start_prometheus(config: dict, work: Path, binary: str = "prometheus",
                     timeout: float = 30) -> tuple[str, subprocess.Popen]:
    """A real Prometheus on a free loopback port with ``config`` (a prometheus.yml as a
    dict), its data and log in ``work``: ``(url, process)`` once it is ready; raises
    ``RuntimeError`` with the end of its log otherwise (the process stopped)."""
    import yaml

    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    url = f"http://127.0.0.1:{free_port()}"
    log = work / "prometheus.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [binary, f"--config.file={work / 'prometheus.yml'}",
             f"--storage.tsdb.path={work / 'data'}",
             f"--web.listen-address={url.removeprefix('http://')}"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(url + "/-/ready", proc, log, "prometheus", timeout)
    except BaseException:
        stop_process(proc)
        raise
    return url, proc
