"""bench/README.md and the README's benchmark table, rendered from ``bench/results/*.json``.

    python -m bench.report            # rewrites both from the results on disk
    python -m bench.report --check    # exits 1 when either is out of date

Numbers are never typed by hand: every figure in either file comes from a result file the
benchmark scripts wrote, and each table names the files it read. Of several runs, each
case's latest full run wins (quick runs only where no full run measured the case).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
BENCH_README = ROOT / "bench" / "README.md"
README = ROOT / "README.md"
# the README's generated block lies between these two lines
BLOCK_BEGIN = "<!-- bench/report.py: begin -->"
BLOCK_END = "<!-- bench/report.py: end -->"
# and the serving table between these
LOAD_BEGIN = "<!-- bench/report.py load: begin -->"
LOAD_END = "<!-- bench/report.py load: end -->"


@dataclass(frozen=True)
class Result:
    """One result file: its name (for the tables' sources) and its JSON."""

    name: str
    data: dict

    @property
    def quick(self) -> bool:
        return bool(self.data.get("quick"))


def read_results(kind: str, directory: Path = RESULTS) -> list[Result]:
    """Every ``<kind>-<UTC timestamp>.json`` in ``directory``, oldest first (the timestamp
    orders them)."""
    return [Result(path.name, json.loads(path.read_text()))
            for path in sorted(directory.glob(f"{kind}-*.json"))]


def latest_cases(results: list[Result], list_key: str,
                 name_key: str) -> list[tuple[dict, Result]]:
    """Each case's latest measurement with the run that made it, in the order the cases
    were first measured: full runs beat quick ones, later runs beat earlier ones."""
    chosen: dict[str, tuple[dict, Result]] = {}
    for result in sorted(results, key=lambda r: (not r.quick, r.name)):
        for case in result.data[list_key]:
            chosen[case[name_key]] = (case, result)
    return list(chosen.values())


# -- numbers as the tables print them -----------------------------------------------------
def _ms(value: float) -> str:
    """Milliseconds to two or three significant digits."""
    if value < 0.1:
        return f"{value:.3f}"
    if value < 1:
        return f"{value:.2f}"
    if value < 10:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def _ratio(value: float) -> str:
    return f"{value:,.0f}x" if value >= 10 else f"{value:.1f}x"


def _fidelity(fidelity: dict) -> str:
    return f"{fidelity['relative_l2_error']:.3f} / {fidelity['top5_precision']:.2f}"


def _sources(results: list[Result]) -> str:
    return ", ".join(f"`bench/results/{name}`" for name in sorted({r.name for r in results}))


def _machines(results: list[Result]) -> list[str]:
    """One line per result file: the machine and its load when the run started."""
    lines = []
    for result in sorted({r.name: r for r in results}.values(), key=lambda r: r.name):
        machine = result.data["machine"]
        lines.append(f"- `bench/results/{result.name}`: {result.data['started'][:10]}, "
                     f"{machine['cores']} cores ({machine['cpu']}), load average "
                     f"{_load(machine['load_average'])} at the start; scikit-learn "
                     f"{machine['scikit-learn']}, shap {machine['shap']}"
                     + (", `--quick`" if result.quick else ""))
    return lines


def _load(values: list[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(row) + " |" for row in rows)]


# -- pipelines -----------------------------------------------------------------------------
_ESTIMATOR = re.compile(
    r"\b((?:[A-Z][A-Za-z]*)?(?:Classifier|Regressor|Regression|SVC|SVR)(?:CV)?)\b")


_SMALL_SET = re.compile(r"\b(\d[\d,]*) training rows\b")


def _case_label(case: dict) -> str:
    """``loan default, RandomForestClassifier`` from the case's description, with the
    training rows when it names them (a small set of a topic that has a large one too)."""
    estimator = _ESTIMATOR.search(case["description"])
    topic = case["description"].split(" (")[0].split(",")[0]
    if not estimator:
        return case["name"]
    small = _SMALL_SET.search(case["description"])
    return f"{topic}, {estimator.group(1)}" + (f", {small.group(1)} rows" if small else "")


def _method(shipped: dict) -> str:
    """The shipped explainer as a reader needs it: its kind and what makes it that kind."""
    method, params = shipped["method"], shipped.get("params", {})
    link = params.get("margin_link") or ""
    if method == "amortized" and link and not link.startswith("no margin base"):
        return f"amortized + {link} margin base"
    if method == "tree" and params.get("engine") == "paths":
        return "tree (exact paths)"
    if method == "svm":
        return f"svm (kmeans-{params.get('n_background')})"
    return method


def _speedup(case: dict) -> float:
    return case["anchor"]["row_ms"] / case["shipped"]["row_given_outputs_ms"]


def _speedup_cell(case: dict) -> str:
    """The speed-up, or ``-`` where the anchor or distill failed."""
    return _ratio(_speedup(case)) if "anchor" in case and "shipped" in case else "-"


def _failed(case: dict, stage: str) -> str:
    """A stage that did not finish, with the first words of its error."""
    error = case.get("errors", {}).get(stage) or case.get("errors", {}).get("case", "")
    return f"failed: {error[:90]}"


def _breakdown(shipped: dict) -> str:
    """One served row's milliseconds by request-path step (runs that recorded them)."""
    parts = shipped.get("row_breakdown_ms")
    if not parts:
        return "-"
    return " / ".join(_ms(max(parts[k], 0.0)) for k in
                      ("validation", "transformation", "model_call", "explanation", "rest"))


PIPELINES_METHOD = """\
`python -m bench.pipelines` (part of `make bench`; `--quick` takes a few minutes) runs fourteen
scikit-learn `Pipeline`s as users write them (`tests/support/realistic.py`: median imputer + scaler
on numbers, most-frequent imputer + one-hot on strings, in front of the estimator) on the
data of `scoring.datasets` (string categoricals with missing values, skewed numbers,
interactions). Only the library's public calls are used, so it measures whatever
`distill` chooses. Per case, in one run on one machine:

- **ground truth**: interventional Shapley values at the raw columns by exact enumeration
  of every raw-column coalition, on every training row as background when that fits the
  time budget (60 s; `--quick`: 10 s), else on a uniform sample (the table says which);
- **anchor**, the Azure SDK's configuration: shap's `KernelExplainer` on
  `shap.kmeans(X_train, 10)`, default `nsamples`, `l1_reg="auto"`, on the engineered rows
  and summed onto the raw columns (fidelity: the mean over 3 seeds; one row per call);
- **shipped**: what the default `distill(pipeline, X_train)` ships, timed per engineered
  row given the model outputs (what the service pays), one thread;
- **request path**: `ExplanationBundle.score` of one JSON record, without the explanation
  and with it (end to end), against the bare `pipeline.predict_proba` (or `predict`) of a
  one-row DataFrame, the three timed in turn in three rounds; and where a served row's time
  goes: each request-path step timed alone on that row (validation of the record, the
  transformations, the model call, the explanation given the model outputs) and the rest
  (the answer's layout and checks).

Fidelity is the relative L2 error / top-5 precision against the ground truth on held-out
rows; the speed-up is the anchor's time per row over the shipped explainer's. The machines
are shared and noisy, so every comparison is a ratio of two timings from the same run."""


def pipelines_section(results: list[Result]) -> list[str]:
    cases = latest_cases(results, "cases", "name")
    used = [result for _, result in cases]
    rows = []
    for case, _ in cases:
        anchor, shipped = case.get("anchor"), case.get("shipped")
        missed = [name for name, ok in case.get("targets", {}).items() if ok is False]
        served = distill = "-"
        if shipped:
            e2e, bare = shipped["row_e2e_ms"], shipped["row_bare_ms"]
            served = f"{_ms(e2e)} vs {_ms(bare)} ms ({_ratio(e2e / bare)})"
        if shipped or "distill_seconds" in case:
            distill = f"{(shipped or case)['distill_seconds']:.0f} s"
        rows.append([
            _case_label(case),
            f"{_fidelity(anchor['fidelity'])}, {_ms(anchor['row_ms'])} ms" if anchor
            else _failed(case, "anchor"),
            f"{_method(shipped)} {_fidelity(shipped['fidelity'])}, "
            f"{_ms(shipped['row_given_outputs_ms'])} ms" if shipped
            else _failed(case, "shipped"),
            _speedup_cell(case), served, _breakdown(shipped or {}), distill,
            "all met" if not missed else "missed: " + ", ".join(f"`{m}`" for m in missed)])
    truth_rows = [[_case_label(case), f"{case['n_train']:,}", case["ground_truth"]["background"],
                   f"{case['ground_truth']['coalitions']:,}",
                   f"{case['ground_truth']['seconds']:.0f} s", str(case["n_explained_rows"])]
                  for case, _ in cases if "ground_truth" in case]
    report_rows = []
    for case, _ in cases:
        check = case.get("shipped", {}).get("report_check")
        if check is None:
            continue
        report = case["shipped"]["report_fidelity"]
        report_rows.append([
            _case_label(case), f"{report['relative_l2_error']:.3f}",
            f"{check['bench_on_report_rows']['relative_l2_error']:.3f}",
            f"{check['reference_error']['relative_l2_error']:.3f}",
            "yes" if check["agrees"] else "no",
            f"{case['shipped'].get('expected_values_background_gap', float('nan')):.1g}",
            f"{case['shipped']['expected_values_gap']:.3g}"])
    lines = ["## Real pipelines: the shipped default against the SDK's configuration", "",
             PIPELINES_METHOD, "", "Results:", "", *_machines(used), "",
             *_table(["case", "anchor (SDK configuration)", "shipped default",
                      "speed-up, 1 row", "served row end to end vs bare",
                      "served row: validation / transformation / model call / explanation / "
                      "rest, ms", "distill", "targets"], rows), "",
             "Targets: fidelity no worse than the anchor's (`relL2<=anchor`, `top5>=anchor`), "
             "20 times faster per row, one row's request path at most 1.2 times the bare "
             "pipeline without the explanation and 1.3 times with it (runs before these "
             "targets held a served row to twice the bare pipeline: `e2e<=2x bare`), distill "
             "under two minutes, and distill's own report within its noise of the ground "
             "truth (`report~truth`).", "",
             *request_path_lines(results), "",
             "### The ground truth of each case", "",
             *_table(["case", "training rows", "background", "coalitions", "time",
                      "held-out rows"], truth_rows)]
    if report_rows:
        lines += ["", "### Distill's own report against the ground truth", "",
                  "Distill measures its candidates on 30 held-out rows against its own "
                  "reference values. The bench computes the ground truth on those same rows "
                  "(`report_.held_out_rows`) and distill's kind of reference too: how far that "
                  "reference is from the ground truth is the report's own noise. Expected "
                  "values: the served one against the model's mean output over the "
                  "explainer's stated background, and over every training row.", "",
                  *_table(["case", "report: rel. L2", "ground truth on its rows: rel. L2",
                           "its reference's own error", "agree", "expected value vs "
                           "background mean", "vs training mean"], report_rows)]
    return lines


def request_path_lines(results: list[Result]) -> list[str]:
    """One row's request path per case, from the latest run that timed it (quick or full:
    the same three calls either way, fewer repeats in a quick run)."""
    chosen: dict[str, tuple[dict, Result]] = {}
    for result in results:  # oldest first: a later run's measurement replaces the earlier
        for case in result.data["cases"]:
            if "row_score_ms" in (case.get("shipped") or {}):
                chosen[case["name"]] = (case, result)
    if not chosen:
        return []
    rows = []
    for case, result in chosen.values():
        shipped = case["shipped"]
        score, e2e, bare = shipped["row_score_ms"], shipped["row_e2e_ms"], shipped["row_bare_ms"]
        rows.append([_case_label(case), shipped["method"], f"{_ms(bare)} ms",
                     f"{_ms(score)} ms ({score / bare:.2f}x)",
                     f"{_ms(e2e)} ms ({e2e / bare:.2f}x)", f"`{result.name}`"])
    used = sorted({result.name: result for _, result in chosen.values()}.values(),
                  key=lambda r: r.name)
    runs = "; ".join(f"`bench/results/{r.name}` (load average "
                     f"{_load(r.data['machine']['load_average'])} at the start"
                     f"{', `--quick`' if r.quick else ''})" for r in used)
    return ["### One row's request path against the bare pipeline", "",
            f"Each case from the latest run that timed it: {runs}. CPU time of one record "
            "through `ExplanationBundle.score` without the explanation and with it, against "
            "the pipeline's `predict_proba` (or `predict`) of a new one-row DataFrame; the "
            "targets are 1.2x and 1.3x.", "",
            *_table(["case", "explainer", "bare pipeline", "request path", "with the "
                     "explanation", "run"], rows)]


def readme_block(results: list[Result]) -> str:
    """The README's short table: per case, the SDK's configuration against the shipped
    default."""
    cases = latest_cases(results, "cases", "name")
    rows = [[_case_label(case),
             _fidelity(case["anchor"]["fidelity"]) if "anchor" in case else "failed",
             f"{_method(case['shipped'])}: {_fidelity(case['shipped']['fidelity'])}"
             if "shipped" in case else "distill failed",
             _speedup_cell(case)] for case, _ in cases]
    return "\n".join([
        BLOCK_BEGIN,
        *_table(["pipeline", "SDK configuration: rel. L2 / top-5", "shipped: rel. L2 / top-5",
                 "speed-up per row"], rows),
        "",
        f"From {_sources([r for _, r in cases])}; rendered by `python -m bench.report`.",
        BLOCK_END])


# -- scale ---------------------------------------------------------------------------------
SCALE_METHOD = """\
`python -m bench.scale` (part of `make bench`) runs `distill` with its defaults at the
largest size it promises: 5,000 training rows x 30 raw columns (22 skewed numeric columns
and 8 string categoricals, about 4 % missing each, a target with interactions), the usual
`ColumnTransformer` in front of each model. Fidelity is what distill's own report measured
against its reference on its held-out rows; the goal is distill under two minutes."""


def scale_section(results: list[Result]) -> list[str]:
    models = latest_cases(results, "models", "model")
    rows, refused = [], []
    for model, result in models:
        if "error" in model:
            rows.append([f"`{model['model']}`", "failed: " + model["error"], "", "", "",
                         f"{model['distill_seconds']:.0f} s", f"`{result.name}`"])
            continue
        latency = model["latency"]
        rows.append([f"`{model['model']}`", model["method"], _fidelity(model["fidelity"]),
                     _ms(latency["row_given_outputs_ms"]), _ms(latency["row_ms"]),
                     f"{model['distill_seconds']:.0f} s"
                     + (" (timed out)" if model.get("timed_out") else ""),
                     f"`{result.name}`"])
        refused += [f"- `{model['model']}`, {trial['method']}: {trial['error']}"
                    for trial in model.get("tried", []) if "error" in trial]
    lines = ["## Distill at scale", "", SCALE_METHOD, "", "Results:", "",
             *_machines([r for _, r in models]), "",
             *_table(["model", "shipped", "rel. L2 / top-5", "ms per row given the outputs",
                      "ms per row, model call included", "distill", "from"], rows)]
    if refused:
        lines += ["", "Candidates distill could not use, with its reasons:", "", *refused]
    return lines


# -- dashboard -----------------------------------------------------------------------------
DASHBOARD_METHOD = """\
`make bench-dashboard` (`python -m bench.dashboard`) explains 20,000 and 200,000 credit
rows with `scoring explain` (a LogisticRegression pipeline, exact linear explainer), serves
each file with `bentoml serve` (`SCORING_DASHBOARD_EXPLANATION`), times every view's data
request (median and worst of 20, payload size) and loads `/dashboard` in chromium 5 times
cold (a fresh browser profile: no cache) and 5 times warm until the four global views are
drawn. Both sizes run side by side in one run. Goals: every view's request under 500 ms and
the four views drawn within 2 s at 200,000 rows."""


def _median(loads: list[dict], key: str) -> float:
    return statistics.median(load[key] for load in loads)


def dashboard_section(results: list[Result]) -> list[str]:
    result = results[-1]
    sizes = result.data["sizes"]
    names = list(sizes)
    rows = [["explanation file (what inlining every row would ship)",
             *(f"{sizes[n]['explanation_file_bytes'] / 1e6:.0f} MB" for n in names)]]
    for view in sizes[names[0]]["views"]:
        rows.append([f"{view}: median / worst ms, payload",
                     *(f"{sizes[n]['views'][view]['median_ms']:.1f} / "
                       f"{sizes[n]['views'][view]['max_ms']:.1f}, "
                       f"{sizes[n]['views'][view]['bytes'] / 1000:.1f} kB" for n in names)])
    for state in ("cold", "warm"):
        loads = {n: sizes[n]["page_loads"][state] for n in names}
        if state == "cold":
            rows.append(["cold load: first contentful paint (page and controls)",
                         *(f"{_median(loads[n], 'first_contentful_paint_s'):.2f} s"
                           for n in names)])
        rows.append([f"four global views drawn, {state}: median / worst",
                     *(f"{_median(loads[n], 'first_paint_s'):.2f} / "
                       f"{max(load['first_paint_s'] for load in loads[n]):.2f} s"
                       for n in names)])
        rows.append(["... CPU time of the page's main thread",
                     *(f"{_median(loads[n], 'main_thread_cpu_s'):.2f} s" for n in names)])
    cold = {n: sizes[n]["page_loads"]["cold"] for n in names}
    rows.append(["cold, page clock: plotly.min.js received / scripts run / views drawn",
                 *(f"{_median(cold[n], 'plotly_received_s'):.2f} / "
                   f"{_median(cold[n], 'scripts_loaded_s'):.2f} / "
                   f"{_median(cold[n], 'in_page_drawn_s'):.2f} s" for n in names)])
    rows.append(["server and worker resident memory",
                 *(f"{sizes[n]['server_rss_mb']:.0f} MB" for n in names)])
    rows.append(["load average", *(f"{sizes[n]['load_average']:.1f}" for n in names)])
    return ["## The dashboard at 20,000 and 200,000 rows", "", DASHBOARD_METHOD, "",
            f"Results: {_sources([result])}, {result.data['cores']} cores, "
            f"{result.data['date'][:10]}.", "",
            *_table(["", *(f"{int(n):,} rows" for n in names)], rows)]


# -- flood ---------------------------------------------------------------------------------
FLOOD_METHOD = """\
`make bench-flood` (`python -m bench.flood`) serves the demo bundle (one worker, a bearer
token set) and, kind after kind, sends the worst request of that kind from several
connections (default 4, for 60 s) while another connection asks `/livez` every 100 ms and
the worker's resident memory is sampled. Each kind is checked: `/livez` under 1 s, the
worker's growth under 300 MiB, no metric series added per request. The client runs on the
same machine."""

FLOOD_KINDS = {
    "paths": "a new path under the Swagger UI's prefixes each time, half without the token",
    "empty_rows": "8 MB of `{\"rows\": [[], [], ...]}`: 2.7 million empty rows",
    "empty_rows_at_bound": "as many empty rows as the JSON budget lets through",
    "ice_keys": "an ICE row of 250,000 unknown fields",
    "ice_keys_at_bound": "as many unknown fields as the JSON budget lets through",
}


def flood_section(results: list[Result]) -> list[str]:
    result = results[-1]
    rows = [[f"`{r['kind']}`", FLOOD_KINDS.get(r["kind"], ""), f"{r['requests']:,}",
             ", ".join(f"{status}: {n:,}" for status, n in r["answers"].items()),
             f"{r['livez_max_s'] * 1000:.0f} / {r['livez_p99_s'] * 1000:.0f}",
             f"+{r['rss_growth_mib']:.0f}", f"{r['series_before']} -> {r['series_after']}",
             "all met" if all(r["checks"].values()) else
             "missed: " + ", ".join(c for c, ok in r["checks"].items() if not ok)]
            for r in result.data["results"]]
    budget = result.data["json_budget"]
    runs = sorted({(r["seconds"], r["clients"]) for r in result.data["results"]})
    return ["## A flood from one client", "", FLOOD_METHOD, "",
            f"Results: {_sources([result])}: bundle `{result.data['bundle']}` (JSON budget "
            f"{budget['values']:,} values, {budget['containers']:,} containers), each kind "
            + " or ".join(f"{seconds:g} s from {clients} connections"
                          for seconds, clients in runs)
            + f"; {result.data['machine']}.", "",
            *_table(["kind", "what each request is", "requests", "answers",
                     "`/livez` max / p99 ms", "worker MiB", "metric series", "checks"], rows)]


# -- load ----------------------------------------------------------------------------------
LOAD_METHOD = """\
`make load` (`python -m bench.load`) starts three servers of the same model on one machine
in one run: ours with its default settings (`bentoml serve`, one worker per CPU), answering
with explanations; a bare one-worker BentoML service returning `predict` and
`predict_proba` and nothing else (`bench/bare_service.py`: the framework's ceiling); and
MLServer's scikit-learn runtime over the Open Inference Protocol, predictions and
probabilities (`.venv-mlserver`, installed by the target). `wrk` on 127.0.0.1 POSTs the
same body for a fixed time at each number of connections, the servers in turn within a
level; ours also answers the one-row request on its V2 route. `wrk` shares the cores with
the servers it measures. Errors: connection errors, timeouts and non-2xx answers."""

# the README's short table: one row and 100 rows at this many connections
README_CONNECTIONS = 32


def _runs(result: Result) -> dict[tuple[str, int, int], dict]:
    return {(r["server"], r["rows"], r["connections"]): r for r in result.data["runs"]}


def _load_run_line(result: Result) -> str:
    data, machine = result.data, result.data["machine"]
    ours = data["ours"]
    return (f"{_sources([result])}: {data['started'][:10]}, {machine['cores']} cores "
            f"({machine['cpu']}), load average {_load(machine['load_average'])} at the start "
            f"and {_load(data['load_average_end'])} at the end; bundle `{ours['tag']}` "
            f"({ours['model_class'].rsplit('.', 1)[-1]} + {ours['explainer']}, "
            f"{ours['workers']} workers)")


def _worker_memory(result: Result) -> str:
    """``; resident memory of each of our workers ...`` when the run measured it."""
    workers = result.data.get("ours_worker_resident_mb")
    if not workers:
        return ""
    return ("; resident memory of each of our workers after the run: "
            + ", ".join(f"{mb:,.0f}" for mb in workers) + " MB")


def load_section(results: list[Result]) -> list[str]:
    result = results[-1]
    rows = [[r["server"], str(r["rows"]), str(r["connections"]),
             f"{r['requests_per_s']:,.0f}", f"{r['rows_per_s']:,.0f}", _ms(r["p50_ms"]),
             _ms(r["p99_ms"]), f"{r['errors']:,}"]
            for r in sorted(result.data["runs"],
                            key=lambda r: (r["rows"], r["connections"]))]
    ratios = [[q["ratio"], str(q["rows"]), str(q["connections"]), f"{q['value']:.2f}"]
              for q in result.data["ratios"]]
    memory = ", ".join(f"{name} {mb:,.0f}" for name, mb in result.data["resident_mb"].items())
    return ["## Serving under load: ours, a bare BentoML service and MLServer", "",
            LOAD_METHOD, "",
            f"Results: {_load_run_line(result)}; {result.data['duration_s']} s per line.", "",
            *_table(["server", "rows per request", "connections", "requests/s", "rows/s",
                     "p50 ms", "p99 ms", "errors"], rows), "",
            "Ratios of requests/s in the same run (ours over each peer; the V2 route over "
            "`/predict`):", "",
            *_table(["ratio", "rows per request", "connections", "value"], ratios), "",
            f"Resident memory after the run, MB (server and its processes): {memory}"
            f"{_worker_memory(result)}."]


def load_readme_block(results: list[Result]) -> str:
    """The README's serving table: each server at README_CONNECTIONS connections."""
    lines = [LOAD_BEGIN]
    if results:
        result = results[-1]
        runs = _runs(result)
        servers = list(dict.fromkeys(r["server"] for r in result.data["runs"]))
        rows = []
        for server in servers:
            one = runs.get((server, 1, README_CONNECTIONS))
            hundred = runs.get((server, 100, README_CONNECTIONS))
            rows.append([server,
                         f"{one['requests_per_s']:,.0f}" if one else "-",
                         f"{_ms(one['p50_ms'])} / {_ms(one['p99_ms'])}" if one else "-",
                         f"{hundred['rows_per_s']:,.0f}" if hundred else "-"])
        lines += [*_table(["server", f"1 row, {README_CONNECTIONS} connections: requests/s",
                           "p50 / p99 ms", f"100 rows, {README_CONNECTIONS} connections: "
                           "rows/s"], rows), "",
                  f"From {_load_run_line(result)}{_worker_memory(result)}; every level and "
                  "the ratios: [bench/README.md](bench/README.md)."]
    return "\n".join([*lines, LOAD_END])


SOAK_METHOD = """\
`make soak` (`python -m bench.load --soak 600`) serves the same bundle with the default
settings and holds it at 32 connections of one-row `/predict` for 10 minutes, in 30 s
windows: errors, the resident memory of the server and its workers, and the p99 of each
window (the first window is the warm-up)."""


def soak_section(results: list[Result]) -> list[str]:
    result = results[-1]
    data = result.data
    windows = data["windows"]
    rps = [w["requests_per_s"] for w in windows]
    return ["## Soak: 10 minutes at 32 connections", "", SOAK_METHOD, "",
            f"Results: {_load_run_line(result)}; {data['soak_s']} s.", "",
            *_table(["requests", "errors", "requests/s (min - max window)",
                     "p99 ms (median / max window)", "memory growth after the warm-up"],
                    [[f"{data['requests']:,}", f"{data['errors']:,}",
                      f"{min(rps):,.0f} - {max(rps):,.0f}",
                      f"{_ms(data['p99_median_ms'])} / {_ms(data['p99_max_ms'])}",
                      f"{100 * data['resident_growth']:.1f} %"]])]


# -- batching ------------------------------------------------------------------------------
BATCHING_METHOD = """\
`python -m bench.batching` bounds what adaptive batching of one-row requests could gain
once the workers use every core: the request path's CPU time per row (`ExplanationBundle.
score`, one thread, medians) on one row per call against 32 rows per call, for the kernel
and permutation scoring explainers with their defaults and for the model alone, on the
demo's SVC (30 numbers, no transformations) and an MLP behind the realistic preprocessing
of credit rows. Batching can only amortize per-call work: it adds no core."""


def batching_section(results: list[Result]) -> list[str]:
    result = results[-1]
    data = result.data
    rows = [[model, explainer, _ms(r["one_row_ms"]), _ms(r["batched_ms_per_row"]),
             _ratio(r["batching_gain"])]
            for model, explainers in data["models"].items()
            for explainer, r in explainers.items()]
    machine = data["machine"]
    return ["## What batching one-row requests could gain", "", BATCHING_METHOD, "",
            f"Results: {_sources([result])}: {data['started'][:10]}, {machine['cores']} cores "
            f"({machine['cpu']}), load average {_load(machine['load_average'])} at the start.",
            "",
            *_table(["model", "explainer", "one row per call, ms", f"{data['batch']} rows "
                     "per call, ms per row", "at most"], rows)]


# -- offline -------------------------------------------------------------------------------
OFFLINE_METHOD = """\
`python -m bench.offline` runs the seed's recipe, `TabularExplainer(model, x_train)
.explain_global(x_test)`, on the seed's breast-cancer `SVC` (114 test rows) and on
realistic pipelines (`tests/support/realistic.py`: strings with missing values and numbers
through a `ColumnTransformer`), timing construction and explanation together. Side by side
in one run: **before**, the algorithm `TabularExplainer` ran for these models until now
(shap's `KernelExplainer` on `shap.kmeans(X_train, 10)`, default `nsamples`,
`l1_reg=False`, engineered values summed onto the raw columns: the Azure SDK's
configuration), and **now**, what it picks. Fidelity is the relative L2 error / top-5
precision at the raw columns against one reference per case: exact enumeration of every
raw-column coalition, or (30 columns) antithetic permutation sampling on every training
row, whose own noise is the gap between two seeds."""


def _reference(info: dict) -> str:
    if info["kind"] == "exact":
        return f"exact, {info['background_rows']} training rows"
    own = info.get("own_error", {}).get("relative_l2_error")
    return (f"permutation, {info['background_rows']} training rows"
            + (f" (own noise {own:.3f})" if own is not None else ""))


def offline_section(results: list[Result]) -> list[str]:
    cases = latest_cases(results, "cases", "name")
    rows = [[f"`{case['name']}`", str(case["n_explained_rows"]),
             f"{case['today']['seconds']:.1f} s, {_fidelity(case['today']['fidelity'])}",
             f"{case['new']['method']}: {case['new']['seconds']:.1f} s, "
             f"{_fidelity(case['new']['fidelity'])}",
             _ratio(case["speedup"]), f"{case['load_average']:.1f}",
             f"{_reference(case['reference'])}, {case['reference']['rows']} rows"]
            for case, _ in cases]
    return ["## The seed's recipe offline: TabularExplainer before and now", "",
            OFFLINE_METHOD, "", "Results:", "", *_machines([r for _, r in cases]), "",
            *_table(["case", "rows explained", "before: time, rel. L2 / top-5",
                     "now: time, rel. L2 / top-5", "speed-up", "load average",
                     "reference"], rows)]


FALLBACK_METHOD = """\
`python -m bench.fallback` measures distill's fallback for black boxes on small training
sets, the centroid walks (one antithetic pair of permutation walks from each of 16, 32,
64 or 128 kmeans centroids, weighted by cluster size: `CentroidWalksScoringExplainer`),
forced at each budget, beside the anchor (shap's `KernelExplainer` on `shap.kmeans(X_train, 10)`,
fidelity the mean of 3 seeds) and distill's bar (`KernelScoringExplainer` on kmeans-10,
raw columns as players), in one run. Fidelity is the relative L2 error / top-5 precision
against exact interventional Shapley values of the raw columns on every training row;
times are CPU milliseconds of one thread for one row given the model outputs, each
explainer timed in turn in three rounds; the speed-up is the anchor's time over the
explainer's. Faithful: relative L2 error no larger and top-5 precision no lower than the
anchor's."""


def _walks_cell(entry: dict) -> str:
    mark = "" if entry["faithful"] else " (less faithful)"
    return (f"{_fidelity(entry['fidelity'])}, {_ms(entry['row_ms'])} ms, "
            f"{_ratio(entry['speedup'])}{mark}")


def fallback_section(results: list[Result]) -> list[str]:
    cases = latest_cases(results, "cases", "name")
    budgets = sorted({int(k[6:]) for case, _ in cases for k in case if k.startswith("walks_")})
    rows = [[f"`{case['name']}`: {case['description']}",
             f"{_fidelity(case['anchor']['fidelity'])}, {_ms(case['anchor']['row_ms'])} ms",
             _walks_cell(case["bar"]),
             *(_walks_cell(case[f"walks_{k}"]) if f"walks_{k}" in case else "-"
               for k in budgets)]
            for case, _ in cases]
    return ["## The fallback for black boxes on small data", "", FALLBACK_METHOD, "",
            "Results:", "", *_machines([r for _, r in cases]), "",
            *_table(["case", "anchor: rel. L2 / top-5, time",
                     "distill's bar (kmeans-10, raw columns)",
                     *(f"centroid walks, {k} centroids" for k in budgets)], rows)]


# -- margin base ---------------------------------------------------------------------------
MARGIN_BASE_METHOD = """\
`python -m bench.margin_base` times the exact margin base the amortized explainer ships for
boosting classifiers' probabilities (the path engine's values of the margin at the raw
columns on 1,000 training rows, carried through the softmax or logistic link), one held-out
row at a time, before and after a change: the engine and the link as they were at a git
revision and as they are, built side by side in one process and called in turn, each call
after a sweep of memory that evicts the caches (CPU time on one thread, medians). The
largest difference is between the two sides' values and bases on every row."""


def margin_base_section(results: list[Result]) -> list[str]:
    cases = latest_cases(results, "cases", "name")
    rows = [[f"`{case['name']}`", f"{case['trees']:,} / {case['leaves']:,}",
             str(case["players"]), case["link"], _ms(case["before_ms"]),
             _ms(case["after_ms"]), _ratio(case["speedup"]),
             f"{case['largest_difference']:.1e}", f"{case['load_average']:.1f}"]
            for case, _ in cases]
    befores = ", ".join(sorted({r.data["before"] for _, r in cases}))
    return ["## The margin base of boosting classifiers, before and after", "",
            MARGIN_BASE_METHOD, "", f"Results (before: {befores}):", "",
            *_machines([r for _, r in cases]), "",
            *_table(["case", "trees / leaves", "players", "link", "before, ms per row",
                     "after, ms per row", "speed-up", "largest difference",
                     "load average"], rows)]


# -- the page ------------------------------------------------------------------------------
INTRO = """\
# Benchmarks

Generated by `python -m bench.report` (`make bench-report`) from the result files in
`bench/results/`: do not edit by hand. A benchmark run writes a new result file; commit it
and run the report again (`tests/test_bench_report.py` fails while this page and the files
disagree).

Every benchmark prints the machine, its inputs and medians, and compares side by side in
one run: the machines are shared and noisy, so ratios measured together hold where absolute
times do not."""

OTHERS = """\
## Benchmarks whose results are not committed

These print their tables; none of their runs is committed, so they have no table here.

- `python -m bench.run` (in `make bench`; `--quick`): every scoring explainer, the anchor
  and the bare model `predict` on seven cases (the seed's SVC, logistic regression, random
  forest, a one-hot pipeline, a regression, 10 classes, 100 features): per-row, 100-row and
  1,000-row times and fidelity against one ground truth per case. With `make sdk-venv`
  (`azureml-interpret` 1.62 in `.venv-sdk`: it pins shap 0.44 and numpy 1.x) it also runs
  the seed's own `KernelScoringExplainer` on the SVC case (`bench/sdk_reference.py`).
- `python -m bench.remote`: batch explanations on Dask, rows per second on 1 and 2 workers
  and peak memory per worker (`docs/remote.md`).
- `make load-prometheus` (`python -m bench.load_prometheus`): `wrk` against a served
  bundle at several concurrency levels, its percentiles beside Prometheus'
  (`deploy/README.md`).
- `python -m bench.monitoring`: the cost of attribution monitoring on a one-row request,
  in process (`docs/monitoring.md`)."""

KINDS = {"pipelines": pipelines_section, "margin_base": margin_base_section,
         "offline": offline_section,
         "scale": scale_section, "dashboard": dashboard_section, "flood": flood_section,
         "load": load_section, "soak": soak_section, "batching": batching_section,
         "fallback": fallback_section}


def bench_readme(directory: Path = RESULTS) -> str:
    """The whole of bench/README.md."""
    parts = [INTRO]
    for kind, section in KINDS.items():
        results = read_results(kind, directory)
        if results:
            parts.append("\n".join(section(results)))
    parts.append(OTHERS)
    return "\n\n".join(parts) + "\n"


def with_block(readme: str, block: str, begin: str = BLOCK_BEGIN,
               end: str = BLOCK_END) -> str:
    """``readme`` with its generated block between ``begin`` and ``end`` replaced by
    ``block`` (which has those lines)."""
    start, stop = readme.find(begin), readme.find(end)
    if start < 0 or stop < start:
        raise ValueError(f"README.md has no block between {begin!r} and {end!r}")
    return readme[:start] + block + readme[stop + len(end):]


def rendered(directory: Path = RESULTS) -> dict[Path, str]:
    """What bench/README.md and README.md should hold for the results in ``directory``."""
    readme = with_block(README.read_text(), readme_block(read_results("pipelines", directory)))
    readme = with_block(readme, load_readme_block(read_results("load", directory)),
                        LOAD_BEGIN, LOAD_END)
    return {BENCH_README: bench_readme(directory), README: readme}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when a file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for path, text in rendered().items():
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
        if not args.check:
            path.write_text(text)
    if args.check and stale:
        print(f"out of date: {', '.join(map(str, stale))}; run python -m bench.report",
              file=sys.stderr)
        return 1
    for path in stale:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
