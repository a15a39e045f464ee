"""The dashboard in a real browser (Debian's chromium driven by playwright, never a
downloaded one) against a real `bentoml serve` of the credit pipeline: every view draws,
a clicked point's local importance, what-if and ICE equal what the model answers; behind a
path-prefix proxy with the bearer token; and the static report offline. Screenshots of
each view go to tests/artifacts/dashboard/."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import requests

from tests.test_dashboard import model_rows

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "dashboard"
GLOBAL_PLOTS = ("data-plot", "importance-plot", "dependence-plot", "summary-plot")
SCORING = str(Path(sys.executable).with_name("scoring"))
TOKEN = "dashboard-t0ken"
TIMEOUT_MS = 60_000


pytestmark = pytest.mark.integration

@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        # a fresh profile (playwright's own temporary user-data-dir) for every launch
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def open_page(browser, allowed: tuple[str, ...]):
    """A page in a fresh context whose requests may only go to ``allowed`` URL prefixes:
    anything else (a CDN) is aborted, so the page must work offline."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
        allowed) else route.abort())
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return page, errors


def wait_rendered(page, plot: str, times: int = 1) -> None:
    page.wait_for_function(f"Number(document.getElementById('{plot}').dataset.rendered || 0)"
                           f" >= {times}")


def n_points(page, plot: str) -> int:
    """Values drawn in a plotly div, over all its traces."""
    return page.evaluate(f"""document.getElementById('{plot}').data.reduce(
        (n, t) => n + (t.x || []).filter((v) => v !== null).length, 0)""")


def rendered(page, plot: str) -> int:
    return page.evaluate(f"Number(document.getElementById('{plot}').dataset.rendered || 0)")


def wait_started(page) -> None:
    """Every view drawn, the local ones on the first sampled row."""
    page.wait_for_selector("body[data-started]", state="attached")


def boxes_overlap(a: dict, b: dict) -> bool:
    return (a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"]
            and a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"])


def click_point(page, plot: str, index: int) -> int:
    """A real mouse click on one drawn marker; returns the row the page then explains."""
    before = page.evaluate("document.getElementById('local-plot').dataset.rendered || '0'")
    box = page.locator(f"#{plot} .scatterlayer .point").nth(index).bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_function("(document.getElementById('local-plot').dataset.rendered || '0')"
                           f" !== '{before}'")
    return int(page.get_attribute("#local-row", "data-row"))


def test_every_view_against_the_service(browser, credit_server, bundles):
    url, credit = credit_server.url, bundles["credit"]
    page, errors = open_page(browser, (url,))
    page.goto(url + "/dashboard")
    for plot in GLOBAL_PLOTS:
        wait_rendered(page, plot)
        assert n_points(page, plot) > 0, plot
    output = int(page.input_value("#output"))
    for view in ("data", "importance", "dependence", "summary"):
        page.locator(f"#view-{view}").screenshot(path=ARTIFACTS / f"{view}.png")

    # the local, what-if and ICE panels start on the first sampled row, not empty
    wait_started(page)
    first = requests.get(url + "/dashboard/api/summary", timeout=30).json()["first_row"]
    assert page.get_attribute("#local-row", "data-row") == str(first)
    values = requests.get(f"{url}/dashboard/api/row?row={first}", timeout=30).json()["values"]
    answer = requests.post(url + "/predict", json={"rows": [values]}, timeout=60).json()
    np.testing.assert_allclose(json.loads(page.get_attribute("#local-plot", "data-values")),
                               answer["local_importance_values"][output][0], atol=1e-9)
    shown = json.loads(page.get_attribute("#whatif-output", "data-probabilities"))
    np.testing.assert_allclose(shown, answer["probabilities"][0], atol=1e-12)
    for plot in ("waterfall-plot", "whatif-plot", "ice-plot"):
        assert rendered(page, plot) == 1 and n_points(page, plot) > 0, plot
    feature = page.input_value("#ice-feature")
    grid, curve = page.evaluate("[document.getElementById('ice-plot').data[0].x, "
                                "document.getElementById('ice-plot').data[0].y]")
    np.testing.assert_allclose(curve, credit.model.predict_proba(model_rows(
        [{**values, feature: g} for g in grid], credit.X))[:, output], atol=1e-9)
    page.screenshot(path=ARTIFACTS / "dashboard-start.png", full_page=True)

    # plotly's toolbar, shown on hover, sits above each plot's area, never over it
    for plot in ("importance-plot", "data-plot", "local-plot"):
        page.hover(f"#{plot} .nsewdrag")
        bar = page.locator(f"#{plot} .modebar")
        page.wait_for_function(f"getComputedStyle(document.querySelector('#{plot} "
                               ".modebar')).opacity === '1'")
        area = page.locator(f"#{plot} .nsewdrag").first.bounding_box()
        assert not boxes_overlap(bar.bounding_box(), area), (plot, bar.bounding_box(), area)
    page.locator("#view-importance").hover()
    page.locator("#view-importance").screenshot(path=ARTIFACTS / "importance-hover.png")

    # coloured by a category: one trace per category (and missing), every row still drawn
    drawn = n_points(page, "data-plot")
    page.select_option("#data-color", "value:employment")
    wait_rendered(page, "data-plot", 2)
    names = page.evaluate("document.getElementById('data-plot').data.map((t) => t.name)")
    assert set(names) == {*credit.X["employment"].dropna().unique(), "(missing)"}
    assert n_points(page, "data-plot") == drawn
    page.locator("#view-data").screenshot(path=ARTIFACTS / "data-by-category.png")
    page.select_option("#data-color", "output")
    wait_rendered(page, "data-plot", 3)

    # a click on a point of each scatter view explains that row as /predict does
    for plot, index in (("data-plot", 5), ("dependence-plot", 11), ("summary-plot", 3)):
        row = click_point(page, plot, index)
        assert row in page.evaluate(f"document.getElementById('{plot}').data[0].customdata")
        values = requests.get(f"{url}/dashboard/api/row?row={row}", timeout=30).json()["values"]
        answer = requests.post(url + "/predict", json={"rows": [values]}, timeout=60).json()
        shown = json.loads(page.get_attribute("#local-plot", "data-values"))
        np.testing.assert_allclose(shown, answer["local_importance_values"][output][0],
                                   atol=1e-9)
    wait_rendered(page, "waterfall-plot")
    page.locator("#view-local").screenshot(path=ARTIFACTS / "local.png")

    # ICE of the selected row: the model's own probabilities on the page's grid
    page.select_option("#ice-feature", "debt_ratio")
    page.click("#ice-run")
    wait_rendered(page, "ice-plot", 2)
    grid, curve = page.evaluate("[document.getElementById('ice-plot').data[0].x, "
                                "document.getElementById('ice-plot').data[0].y]")
    assert len(grid) >= 10
    direct = credit.model.predict_proba(model_rows(
        [{**values, "debt_ratio": g} for g in grid], credit.X))[:, output]
    np.testing.assert_allclose(curve, direct, atol=1e-9)
    page.locator("#view-ice").screenshot(path=ARTIFACTS / "ice.png")

    # what-if: edit a category and a number, the shown prediction is /predict's
    purpose = next(c for c in credit.X["purpose"].dropna().unique() if c != values["purpose"])
    page.select_option("#whatif-form select[name=purpose]", purpose)
    page.fill("#whatif-form input[name=debt_ratio]", "0.95")
    page.dispatch_event("#whatif-form input[name=debt_ratio]", "change")
    page.click("#whatif-run")
    wait_rendered(page, "whatif-plot", 2)
    edited = {**values, "purpose": purpose, "debt_ratio": 0.95}
    answer = requests.post(url + "/predict", json={"rows": [edited]}, timeout=60).json()
    shown = json.loads(page.get_attribute("#whatif-output", "data-probabilities"))
    np.testing.assert_allclose(shown, answer["probabilities"][0], atol=1e-12)
    original = credit.model.predict_proba(model_rows([values], credit.X))[0]
    assert abs(shown[output] - original[output]) > 1e-6  # the edit changed the prediction
    assert f"{answer['probabilities'][0][output]:.4f}" in page.text_content("#whatif-output")
    page.locator("#view-whatif").screenshot(path=ARTIFACTS / "whatif.png")

    # this bundle's explainer has no per-engineered-column values: not offered
    assert not page.is_visible("#local-engineered")
    page.screenshot(path=ARTIFACTS / "dashboard.png", full_page=True)
    assert page.text_content("#error") == "" and errors == []


class _PrefixProxy(BaseHTTPRequestHandler):
    """A reverse proxy serving the service under ``/scoring/`` (as an ingress would)."""

    upstream = ""
    prefix = "/scoring"

    def _forward(self) -> None:
        if not self.path.startswith(self.prefix + "/"):
            self.send_error(404)
            return
        length = int(self.headers.get("Content-Length") or 0)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() in ("authorization", "content-type")}
        r = requests.request(self.command, self.upstream + self.path[len(self.prefix):],
                             data=self.rfile.read(length) if length else None,
                             headers=headers, timeout=60)
        self.send_response(r.status_code)
        self.send_header("Content-Type", r.headers.get("Content-Type", "text/plain"))
        self.send_header("Content-Length", str(len(r.content)))
        self.end_headers()
        self.wfile.write(r.content)

    do_GET = do_POST = _forward

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def explanation_file(bundles, bento_home, tmp_path_factory):
    """`scoring explain` of 200 credit rows (missing values included): the file a served
    dashboard may draw instead of the bundle's stored rows."""
    folder = tmp_path_factory.mktemp("explained")
    bundles["credit"].X.iloc[:200].to_csv(folder / "rows.csv", index=False)
    out = subprocess.run([SCORING, "explain", "--bundle", bundles["credit"].tag, "--data",
                          str(folder / "rows.csv"), "--output", str(folder / "rows.json")],
                         env={**os.environ, "BENTOML_HOME": str(bento_home)},
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return folder / "rows.json"


def test_behind_a_path_prefix_with_the_token(browser, servers, bundles, bento_home,
                                             explanation_file, tmp_path):
    server = servers.start(None, bento_home, tmp_path / "token.log",
                           bundle=bundles["credit"].tag,
                           env={"SCORING_API_TOKEN": TOKEN,
                                "SCORING_DASHBOARD_EXPLANATION": str(explanation_file)})
    proxy = ThreadingHTTPServer(("127.0.0.1", servers.free_port()),
                                type("Proxy", (_PrefixProxy,), {"upstream": server.url}))
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{proxy.server_port}/scoring"
    try:
        # the page and its scripts hold no data: no token; the views need it
        assert requests.get(base + "/dashboard", timeout=30).status_code == 200
        assert requests.get(base + "/dashboard/dashboard.js", timeout=30).status_code == 200
        r = requests.get(base + "/dashboard/api/summary", timeout=30)
        assert r.status_code == 401 and r.json()["reason"] == "unauthorized"

        page, errors = open_page(browser, (base,))
        page.goto(base + "/dashboard")
        page.wait_for_selector("#token-form", state="visible")
        assert "401" in page.text_content("#error")
        page.fill("#token-input", TOKEN)
        page.click("#token-form button")
        for plot in GLOBAL_PLOTS:
            wait_rendered(page, plot)
            assert n_points(page, plot) > 0, plot
        assert "200 explained rows" in page.text_content("#source")
        assert "rows.json" in page.text_content("#source")
        wait_started(page)
        row = click_point(page, "data-plot", 0)
        assert 0 <= row < 200
        page.screenshot(path=ARTIFACTS / "prefix-token.png")

        # the token in the fragment (never sent to the server) works as well
        page, errors = open_page(browser, (base,))
        page.goto(f"{base}/dashboard#token={TOKEN}")
        wait_rendered(page, "importance-plot")
        assert "#token" not in page.url  # taken out of the address bar once read
        assert errors == []
    finally:
        proxy.shutdown()
        servers.stop(server)


def test_the_engineered_view_when_the_explainer_has_it(browser, servers, bundles, bento_home,
                                                       tmp_path):
    """A linear explainer behind a ColumnTransformer has values per engineered (one-hot)
    column: the box is offered and draws /predict's get_raw=false values."""
    tabular = bundles["tabular"]
    tabular.X.iloc[:60].to_csv(tmp_path / "rows.csv", index=False)
    out = subprocess.run([SCORING, "explain", "--bundle", tabular.tag, "--data",
                          str(tmp_path / "rows.csv"), "--output", str(tmp_path / "rows.json")],
                         env={**os.environ, "BENTOML_HOME": str(bento_home)},
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    server = servers.start(None, bento_home, tmp_path / "tabular.log", bundle=tabular.tag,
                           env={"SCORING_DASHBOARD_EXPLANATION": str(tmp_path / "rows.json")})
    try:
        page, errors = open_page(browser, (server.url,))
        page.goto(server.url + "/dashboard")
        wait_started(page)
        assert page.is_visible("#local-engineered")
        before = rendered(page, "local-plot")
        page.check("#local-engineered")
        wait_rendered(page, "local-plot", before + 1)
        row = int(page.get_attribute("#local-row", "data-row"))
        values = requests.get(f"{server.url}/dashboard/api/row?row={row}", timeout=30).json()
        answer = requests.post(server.url + "/predict", json={
            "rows": [values["values"]], "get_raw": False}, timeout=60).json()
        output = int(page.input_value("#output"))
        assert json.loads(page.get_attribute("#local-plot", "data-features")) == \
            answer["feature_names"] != list(tabular.X.columns)
        np.testing.assert_allclose(json.loads(page.get_attribute("#local-plot", "data-values")),
                                   answer["local_importance_values"][output][0], atol=1e-9)
        page.locator("#view-local").screenshot(path=ARTIFACTS / "local-engineered.png")
        assert page.text_content("#local-error") == "" and errors == []
    finally:
        servers.stop(server)


def test_the_static_report_works_offline(browser, bundles, bento_home, tmp_path):
    report = tmp_path / "report.html"
    out = subprocess.run([SCORING, "report", "--bundle", bundles["credit"].tag, "--output",
                          str(report)], env={**os.environ, "BENTOML_HOME": str(bento_home)},
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    page, errors = open_page(browser, ("file://",))
    page.goto(report.as_uri())
    for plot in GLOBAL_PLOTS:
        wait_rendered(page, plot)
        assert n_points(page, plot) > 0, plot
    wait_started(page)  # on the first sampled row, stored in the report
    assert page.get_attribute("#local-row", "data-row") == str(page.evaluate(
        "window.DASHBOARD_STATIC.answers['dashboard/api/summary'].first_row"))
    assert rendered(page, "waterfall-plot") == 1
    row = click_point(page, "dependence-plot", 2)
    assert page.get_attribute("#local-row", "data-row") == str(row)
    assert page.is_disabled("#whatif-run") and page.is_disabled("#ice-run")
    assert "live service" in page.text_content("#whatif-error")
    page.screenshot(path=ARTIFACTS / "report.png")
    assert errors == []
