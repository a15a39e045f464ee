"""`bentoml serve` subprocesses for the tests: started from the project root on a free
port, each with its own BentoML home sharing one model store, stopped by PID."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import free_port, start_prometheus, stop_process, wait_http

ROOT = Path(__file__).resolve().parents[2]
BENTOML = str(Path(sys.executable).with_name("bentoml"))
START_TIMEOUT = 120
# the bearer token of the session's `auth` server; the header and body deadlines (seconds)
# of its `timeout` server
API_TOKEN = "s3cret-token-for-tests"
HEADER_TIMEOUT, BODY_TIMEOUT = 2, 3


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def output_with(self, offset: int, line: str, timeout: float = 20) -> str:
        """The log from ``offset`` once it holds ``line`` (a worker writes it after
        answering: poll)."""
        deadline = time.monotonic() + timeout
        while line not in (log := self.output()[offset:]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert line in log, log[-3000:]
        return log


def start_server(target: str | None, home: Path, log: Path, bundle: str | None = None,
                 wait: bool = True, cwd: Path = ROOT, env: dict | None = None) -> Server:
    """``bentoml serve [target]`` from the project root on a free port (``env``: more
    environment variables for it).

    Each server gets its own BentoML home sharing ``home``'s model and bento stores:
    BentoML keeps its Prometheus multiprocess files in the home and wipes them when a
    server starts, so two servers on one home would mix (and lose) each other's metrics.
    """
    port = free_port()
    own_home = log.with_suffix(".home")
    own_home.mkdir()
    for store in ("models", "bentos"):
        (home / store).mkdir(exist_ok=True)
        (own_home / store).symlink_to(home / store)
    # one worker unless a test asks for more: tests watch the worker, and the machine's
    # cores are shared by the session's servers
    env = {**os.environ, "BENTOML_HOME": str(own_home), "BENTOML_DO_NOT_TRACK": "True",
           "SCORING_WORKERS": "1", **(env or {})}
    if bundle is not None:
        env["SCORING_BUNDLE"] = bundle
    args = [BENTOML, "serve", *([target] if target else []), "--host", "127.0.0.1",
            "--port", str(port)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(f"http://127.0.0.1:{port}", proc, log)
    if wait:
        try:
            wait_ready(server)
        except BaseException:
            stop_server(server)
            raise
    return server


def wait_ready(server: Server, timeout: float = START_TIMEOUT) -> None:
    try:
        wait_http(server.url + "/readyz", server.proc, server.log, "bentoml serve", timeout)
    except RuntimeError as exc:
        raise AssertionError(str(exc)) from None


def stop_server(server: Server) -> None:
    """Stop a `bentoml serve` (BentoML stops its workers on SIGTERM)."""
    stop_process(server.proc)


class Servers:
    """Start and stop `bentoml serve` processes, or any other, from a test (the ``servers``
    fixture)."""

    start = staticmethod(start_server)
    wait_ready = staticmethod(wait_ready)
    stop = staticmethod(stop_server)
    stop_process = staticmethod(stop_process)
    free_port = staticmethod(free_port)
    start_prometheus = staticmethod(start_prometheus)


class ServedBundles:
    """The session's `bentoml serve` processes, ``{name: (bundle tag, more environment)}``
    in the store ``home``: each started by :meth:`start` (side by side, not waited for),
    waited for when first asked for, stopped by :meth:`stop`."""

    def __init__(self, commands: Mapping[str, tuple[str, Mapping[str, str]]], home: Path,
                 logs: Path) -> None:
        self.commands = commands
        self.home = home
        self.logs = logs
        self.started: dict[str, Server] = {}
        self.ready: set[str] = set()

    def start(self, names: Iterable[str]) -> None:
        """Start the servers of ``names`` that are not running (a start is mostly imports:
        two at a time use both cores)."""
        for name in dict.fromkeys(names):
            if name not in self.started:
                tag, env = self.commands[name]
                self.started[name] = start_server(None, self.home, self.logs / f"{name}.log",
                                                  bundle=tag, wait=False, env=dict(env))

    def __getitem__(self, name: str) -> Server:
        self.start([name])
        if name not in self.ready:
            wait_ready(self.started[name])
            self.ready.add(name)
        return self.started[name]

    def stop(self) -> None:
        """SIGTERM to every server first, so that they shut down side by side."""
        for server in self.started.values():
            if server.proc.poll() is None:
                server.proc.terminate()
        for server in self.started.values():
            stop_server(server)
