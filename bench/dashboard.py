"""The dashboard at scale: a served `bentoml serve` drawing a large explanation file.

For each size (default 20,000 and 200,000 rows of the credit data, side by side in one
run): `scoring explain` writes the explanation file, `bentoml serve` draws it
(``SCORING_DASHBOARD_EXPLANATION``), then every view's data request is timed (median and
worst of ``--repeats``, payload size) and chromium loads /dashboard cold (a fresh
browser context each time: no cache) until the four global views are drawn ("first
paint": navigation to the last plot drawn). Goals: first paint under 2 s and every view's
request under 500 ms at 200,000 rows. Writes ``bench/results/dashboard-*.json``.

    python -m bench.dashboard [--rows 20000 200000] [--repeats 20] [--loads 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
import requests
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from scoring import LinearScoringExplainer
from scoring.datasets import make_credit, preprocessor
from tests.support.processes import free_port, stop_process, wait_http

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
GLOBAL_PLOTS = ("data-plot", "importance-plot", "dependence-plot", "summary-plot")
FIRST_PAINT_GOAL_S = 2.0
REQUEST_GOAL_MS = 500.0

_SAVE = """
import sys, joblib
from scoring.artifacts.bundle import ExplanationBundle
model, explainer = joblib.load(sys.argv[1])
print(ExplanationBundle(model, explainer).save("credit_dashboard_bench"))
"""


def _views(row: dict) -> dict[str, tuple[str, str, dict | None]]:
    """name -> (method, path, body) of every request the page makes."""
    return {
        "summary": ("GET", "/dashboard/api/summary", None),
        "importance": ("GET", "/dashboard/api/importance?output=1", None),
        "points (data exploration)": (
            "GET", "/dashboard/api/points?x=value:age&y=output&color=output&output=1", None),
        "points (dependence)": (
            "GET", "/dashboard/api/points?x=value:purpose&y=importance:purpose"
            "&color=value:income&output=1", None),
        "summary points": ("GET", "/dashboard/api/summary_points?output=1&top_k=8", None),
        "row": ("GET", "/dashboard/api/row?row=12345", None),
        "ice (25 rows through the model)": (
            "POST", "/dashboard/api/ice", {"row": row, "feature": "income"}),
        "what-if (/predict)": ("POST", "/predict", {"rows": [row]}),
    }


def _time_views(url: str, repeats: int) -> dict:
    session = requests.Session()
    row = session.get(url + "/dashboard/api/row?row=0", timeout=60).json()["values"]
    out = {}
    for name, (method, path, body) in _views(row).items():
        times, size = [], 0
        for _ in range(repeats):
            started = time.perf_counter()
            r = session.request(method, url + path, json=body, timeout=60)
            times.append((time.perf_counter() - started) * 1000)
            assert r.status_code == 200, (name, r.text[:300])
            size = len(r.content)
        out[name] = {"median_ms": statistics.median(times), "max_ms": max(times),
                     "bytes": size}
    return out


def _first_paints(url: str, loads: int) -> dict[str, list[dict]]:
    """``cold``: a fresh browser context per load (no cache: what the goal is about);
    ``warm``: loads again in one context (plotly.js from the browser's cache, compiled
    code from V8's code cache after the second load), as a returning user sees it."""
    from playwright.sync_api import sync_playwright

    paints: dict[str, list[dict]] = {"cold": [], "warm": []}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        _load(browser.new_context().new_page(), url)  # warms the server's and OS's caches
        for _ in range(loads):
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            paints["cold"].append(_load(context.new_page(), url))
            context.close()
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        for _ in range(loads + 2):
            paints["warm"].append(_load(page, url))
        paints["warm"] = paints["warm"][2:]
        browser.close()
    return paints


def _load(page, url: str) -> dict:
    """One page load until the four global views are drawn, with the page's own timings
    and the CPU time its main thread used (Chrome's ``ThreadTime``: what the load costs
    whatever else the machine runs)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")
    cpu_before = _main_thread_cpu(cdp)
    started = time.perf_counter()
    page.goto(url + "/dashboard")
    for plot in GLOBAL_PLOTS:
        page.wait_for_selector(f"#{plot}[data-rendered]", timeout=60_000)
    total = time.perf_counter() - started
    cpu = _main_thread_cpu(cdp) - cpu_before
    cdp.detach()
    timing = page.evaluate("""(() => {
        const mark = (name) => performance.getEntriesByName(name)[0].startTime;
        const plotly = performance.getEntriesByType('resource').find(
            (r) => r.name.endsWith('plotly.min.js'));
        return {start: mark('dashboard:start'), drawn: mark('dashboard:global-drawn'),
                contentful: mark('first-contentful-paint'),
                load: performance.getEntriesByType('navigation')[0].loadEventEnd,
                plotly: plotly.responseEnd}; })()""")
    return {"first_paint_s": total, "in_page_drawn_s": timing["drawn"] / 1000,
            "scripts_loaded_s": timing["load"] / 1000,
            "plotly_received_s": timing["plotly"] / 1000,
            "script_started_s": timing["start"] / 1000, "main_thread_cpu_s": cpu,
            "first_contentful_paint_s": timing["contentful"] / 1000}


def _main_thread_cpu(cdp) -> float:
    metrics = cdp.send("Performance.getMetrics")["metrics"]
    return next(m["value"] for m in metrics if m["name"] == "ThreadTime")


def _explanation_file(folder: Path, home: Path, tag: str, n_rows: int) -> tuple[Path, float]:
    X, _ = make_credit(n_rows=n_rows, random_state=1)
    data, output = folder / f"rows-{n_rows}.csv", folder / f"explained-{n_rows}.json"
    X.to_csv(data, index=False)
    started = time.perf_counter()
    subprocess.run([str(BIN / "scoring"), "explain", "--bundle", tag, "--data", str(data),
                    "--output", str(output)], check=True, env={**os.environ,
                                                               "BENTOML_HOME": str(home)})
    return output, time.perf_counter() - started


def _rss_mb(pid: int) -> float:
    """Resident memory of a server and its workers, in MB."""
    parent = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [parent, *parent.children(recursive=True)]) / 1e6


def _serve(home: Path, tag: str, explanation: Path, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "True",
           "SCORING_BUNDLE": tag, "SCORING_DASHBOARD_EXPLANATION": str(explanation)}
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(BIN / "bentoml"), "serve", "--host", "127.0.0.1",
                                 "--port", str(port)], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/readyz", proc, log, "bentoml serve", 600)
    return proc, url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[20_000, 200_000])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--loads", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}; model: credit LogisticRegression pipeline, linear "
          f"scoring explainer (exact); {args.repeats} requests per view, {args.loads} cold "
          "page loads", flush=True)
    X, y = make_credit(n_rows=5_000)
    model = Pipeline([("prep", preprocessor()), ("model", LogisticRegression(max_iter=1000))])
    model.fit(X, y)
    explainer = LinearScoringExplainer().fit(model, X)
    results = {"date": datetime.now(UTC).isoformat(), "machine": platform.platform(),
               "cores": os.cpu_count(), "sizes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        folder, home = Path(tmp), Path(tmp) / "bentoml_home"
        import joblib

        joblib.dump((model, explainer), folder / "objects.joblib")
        tag = subprocess.run([sys.executable, "-c", _SAVE, str(folder / "objects.joblib")],
                             cwd=ROOT, env={**os.environ, "BENTOML_HOME": str(home)},
                             check=True, capture_output=True, text=True).stdout.split()[-1]
        for n_rows in args.rows:
            explanation, explain_s = _explanation_file(folder, home, tag, n_rows)
            started = time.perf_counter()
            proc, url = _serve(home, tag, explanation, folder / f"serve-{n_rows}.log")
            ready_s = time.perf_counter() - started
            rss_mb = _rss_mb(proc.pid)
            try:
                views = _time_views(url, args.repeats)
                paints = _first_paints(url, args.loads)
            finally:
                stop_process(proc)
            results["sizes"][n_rows] = {
                "explanation_file_bytes": explanation.stat().st_size,
                "explain_seconds": explain_s, "server_ready_seconds": ready_s,
                "views": views, "page_loads": paints,
                "load_average": os.getloadavg()[0], "server_rss_mb": rss_mb,
                "first_paint_median_s": statistics.median(
                    p["first_paint_s"] for p in paints["cold"])}
            _print(n_rows, results["sizes"][n_rows])
    _print_side_by_side(results["sizes"])
    out = ROOT / "bench" / "results" / \
        f"dashboard-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"results: {out.relative_to(ROOT)}")
    return 0


def _print(n_rows: int, result: dict) -> None:
    print(f"\n{n_rows:,} explained rows: explanation file "
          f"{result['explanation_file_bytes'] / 1e6:.0f} MB (what a dashboard inlining all "
          f"rows would ship), `scoring explain` {result['explain_seconds']:.0f} s, server "
          f"ready in {result['server_ready_seconds']:.0f} s, {result['server_rss_mb']:.0f} MB "
          "resident (server and worker)")
    print(f"  {'view':36s} {'median ms':>10s} {'worst ms':>9s} {'payload kB':>11s}")
    for name, v in result["views"].items():
        flag = "" if v["max_ms"] < REQUEST_GOAL_MS else "  over the goal"
        print(f"  {name:36s} {v['median_ms']:10.1f} {v['max_ms']:9.1f} "
              f"{v['bytes'] / 1e3:11.1f}{flag}")
    for kind, loads in result["page_loads"].items():
        paints = [p["first_paint_s"] for p in loads]
        median = {k: statistics.median(p[k] for p in loads) for k in loads[0]}
        print(f"  first paint, {kind} (load to four global views drawn): median "
              f"{median['first_paint_s']:.2f} s, worst {max(paints):.2f} s (goal "
              f"{FIRST_PAINT_GOAL_S} s); page clock: first contentful paint (the page, "
              f"views empty) {median['first_contentful_paint_s']:.2f} s, dashboard.js started "
              f"{median['script_started_s']:.2f} s, plotly.min.js received "
              f"{median['plotly_received_s']:.2f} s, parsed and run (load event) "
              f"{median['scripts_loaded_s']:.2f} s, views drawn {median['in_page_drawn_s']:.2f} s;"
              f" main-thread CPU {median['main_thread_cpu_s']:.2f} s")
    print(f"  load average after the run: {result['load_average']:.1f}")


def _print_side_by_side(sizes: dict) -> None:
    if len(sizes) < 2:
        return
    (small, a), (large, b) = min(sizes.items()), max(sizes.items())
    print(f"\n{large:,} vs {small:,} rows ({large / small:.0f}x the rows): first paint "
          f"{b['first_paint_median_s'] / a['first_paint_median_s']:.2f}x; median request "
          "time per view:")
    for name in b["views"]:
        print(f"  {name:36s} {b['views'][name]['median_ms'] / a['views'][name]['median_ms']:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
