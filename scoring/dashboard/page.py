"""The dashboard's page and its scripts: served by the service, or inlined with the
answers of the default views into one self-contained HTML report."""

from __future__ import annotations

import json
from functools import cache
from importlib import metadata, resources
from pathlib import Path
from urllib.parse import urlencode

from scoring.dashboard.data import DashboardData

# paths the page asks, relative to the page (works behind any path prefix)
SUMMARY_PATH = "dashboard/api/summary"
IMPORTANCE_PATH = "dashboard/api/importance"
POINTS_PATH = "dashboard/api/points"
SUMMARY_POINTS_PATH = "dashboard/api/summary_points"
ROW_PATH = "dashboard/api/row"
ICE_PATH = "dashboard/api/ice"
# views a static report cannot answer: they call the model
LIVE_ONLY = ["predict", ICE_PATH]
LIVE_NOTE = ("What-if and ICE call the model: they need the live service (GET /dashboard on "
             "`bentoml serve`, or `scoring dashboard --bundle TAG`).")
# rows of a static report's views (and of its clickable local explanations)
REPORT_POINTS = 500
_SCRIPTS = ('<script src="dashboard/dashboard.js"></script>\n'
            '<script defer src="dashboard/plotly.min.js"></script>')
_SUMMARY_TOP = 20  # as dashboard.js's SUMMARY_TOP


def _static(name: str) -> str:
    return resources.files("scoring.dashboard").joinpath("static", name).read_text()


@cache
def page_html() -> str:
    """The page (``GET /dashboard``)."""
    return _static("dashboard.html")


@cache
def dashboard_js() -> str:
    return _static("dashboard.js")


@cache
def plotly_js() -> str:
    """plotly.js as the ``plotly`` package ships it (no CDN, nothing downloaded)."""
    import plotly

    return (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_text()


@cache
def plotly_license() -> str:
    """The licence of the ``plotly`` distribution (MIT), which plotly.js is shipped under."""
    dist = metadata.distribution("plotly")
    for name in ("licenses/LICENSE.txt", "LICENSE.txt"):
        if (text := dist.read_text(name)) is not None:
            return text
    return f"plotly {dist.version}: {dist.metadata.get('License-Expression', 'MIT')}"


def report_html(data: DashboardData, title: str = "Explanation report") -> str:
    """A self-contained HTML page: plotly.js, the dashboard's script and the answers of its
    global views (every feature on x against the model output, every feature's
    dependence, per output) for a sample of ``REPORT_POINTS`` rows, whose local
    explanations are included (click a point). What-if and ICE say they need the service."""
    answers = _report_answers(data)
    payload = json.dumps({"answers": answers, "live_only": LIVE_ONLY, "live_note": LIVE_NOTE},
                         allow_nan=False).replace("</", "<\\/")
    scripts = (f"<script>window.DASHBOARD_STATIC = {payload};</script>\n"
               f"<script>{_inline(dashboard_js())}</script>\n<script>{_inline(plotly_js())}"
               "</script>")
    html = page_html().replace(_SCRIPTS, scripts)
    return html.replace("<title>Explanation dashboard</title>", f"<title>{title}</title>")


def _inline(script: str) -> str:
    return script.replace("</script", "<\\/script")


def _key(path: str, **params: object) -> str:
    """The key dashboard.js's ``queryKey`` builds for the same request."""
    query = urlencode(sorted((k, str(v)) for k, v in params.items()))
    return f"{path}?{query}" if query else path


def _report_answers(data: DashboardData) -> dict:
    summary = data.summary()
    summary["source"] = f"{data.source} (static report: {REPORT_POINTS} rows drawn)"
    answers = {SUMMARY_PATH: summary}
    outputs = range(len(data.output_names))
    top = min(_SUMMARY_TOP, len(data.features))
    for k in outputs:
        answers[_key(IMPORTANCE_PATH, output=k)] = data.global_importance(k, None)
        answers[_key(SUMMARY_POINTS_PATH, output=k, top_k=top)] = data.summary_points(
            k, top, REPORT_POINTS)
        for feature in data.features:
            for x, y in ((f"value:{feature}", "output"),
                         (f"value:{feature}", f"importance:{feature}")):
                answers[_key(POINTS_PATH, x=x, y=y, color="output", output=k)] = data.points(
                    x, y, "output", k, REPORT_POINTS)
    for row in data.order[:REPORT_POINTS]:
        answers[_key(ROW_PATH, row=int(row))] = data.row(int(row))
    return answers
