"""Drive one HTTP route with wrk: a fixed JSON body POSTed for a fixed time."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

# wrk calls done() once at the end; latencies are in microseconds
_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open("%(body)s", "rb"))
wrk.body = f:read("*a")
f:close()

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests": %%d, "duration_us": %%d, "connect": %%d, "read": %%d, ' ..
    '"write": %%d, "status": %%d, "timeout": %%d, "p50": %%d, "p95": %%d, "p99": %%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


def need(tool: str) -> str:
    """The path of ``tool``, or exit naming the package that has it."""
    path = shutil.which(tool)
    if path is None:
        sys.exit(f"error: `{tool}` is not installed; on Debian/Ubuntu: "
                 f"apt-get install -y {tool}  (`make load` does this)")
    return path


@dataclass
class WrkRun:
    """What wrk measured: requests completed, seconds, errors (connect, read, write,
    timeouts and non-2xx answers) and latency percentiles in seconds."""

    requests: int
    seconds: float
    errors: int
    p50: float
    p95: float
    p99: float

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds


def post(url: str, body: bytes, connections: int, seconds: int) -> WrkRun:
    """``wrk -c connections -d seconds`` POSTing ``body`` to ``url`` (two threads at most:
    wrk shares the machine with the servers it measures)."""
    wrk = need("wrk")
    with tempfile.TemporaryDirectory(prefix="scoring-wrk-") as tmp:
        body_file, script = Path(tmp) / "body.json", Path(tmp) / "post.lua"
        body_file.write_bytes(body)
        script.write_text(_SCRIPT % {"body": body_file})
        out = subprocess.run([wrk, "-t", str(min(connections, 2)), "-c", str(connections),
                              "-d", f"{seconds}s", "--timeout", "30s", "-s", str(script), url],
                             capture_output=True, text=True, check=True)
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("WRK_RESULT "))
    result = json.loads(line.removeprefix("WRK_RESULT "))
    return WrkRun(result["requests"], result["duration_us"] / 1e6,
                  sum(result[k] for k in ("connect", "read", "write", "status", "timeout")),
                  result["p50"] / 1e6, result["p95"] / 1e6, result["p99"] / 1e6)
