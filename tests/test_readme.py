"""The README's examples say what the code does: its commands parse, its links lead
somewhere, its endpoints exist, and (integration) its sample answer is the demo's own and
its Python runs."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from scoring.cli import build_parser
from service.guard import KNOWN_PATHS

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, ROOT / "bench" / "README.md", ROOT / "deploy" / "README.md",
         *sorted((ROOT / "docs").glob("*.md"))]
# the line right before the README's sample answer
ANSWER_LINE = "The demo answers, rounded here"
ELIDED = "..."


def _blocks(text: str) -> list[tuple[int, str, str]]:
    """The fenced code blocks of a markdown text: ``(line of the fence, language, body)``."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        if lines[i].startswith("```"):
            start, language = i, lines[i][3:].strip()
            i += 1
            while not lines[i].startswith("```"):
                i += 1
            blocks.append((start, language, "\n".join(lines[start + 1:i])))
        i += 1
    return blocks


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    following = text.find("\n### ", start + len(heading))
    return text[start:following if following > 0 else len(text)]


def _predict_example() -> tuple[dict, str]:
    """The README's curl body of ``POST /predict`` and the answer it shows after it."""
    text = README.read_text()
    marker = text[:text.index(ANSWER_LINE)].count("\n")
    blocks = _blocks(text)
    curl = [body for line, language, body in blocks
            if line < marker and language == "bash" and "/predict" in body][-1]
    answer = next(body for line, language, body in blocks
                  if line > marker and language == "json")
    return json.loads(re.search(r"-d '(.*?)'", curl, re.S).group(1)), answer


def _shown(answer: str):
    """The answer as printed: numbers as ``Decimal`` (their printed precision), ``...``
    ending a list that goes on."""
    return json.loads(answer.replace(ELIDED, f'"{ELIDED}"'), parse_float=Decimal)


def _agrees(shown, actual, where: str = "answer") -> None:
    """``actual`` is what ``shown`` prints, each number within half its last printed digit."""
    if isinstance(shown, dict):
        assert isinstance(actual, dict) and set(shown) == set(actual), (where, actual)
        for key, value in shown.items():
            _agrees(value, actual[key], f"{where}.{key}")
    elif isinstance(shown, list):
        assert isinstance(actual, list), (where, actual)
        elided = bool(shown) and shown[-1] == ELIDED
        items = shown[:-1] if elided else shown
        assert len(actual) > len(items) if elided else len(actual) == len(items), \
            (where, len(actual))
        for i, value in enumerate(items):
            _agrees(value, actual[i], f"{where}[{i}]")
    elif isinstance(shown, Decimal):
        half = Decimal(5) * Decimal(10) ** (shown.as_tuple().exponent - 1)
        assert abs(Decimal(actual) - shown) <= half, (where, shown, actual)
    else:
        assert type(actual) is type(shown) and actual == shown, (where, shown, actual)


def test_the_sample_answer_is_checked_to_its_printed_digits():
    body, answer = _predict_example()
    assert len(body["rows"][0]) == 30 and body["top_k"] == 3
    shown = _shown(answer)
    actual = json.loads(json.dumps(shown, default=float))  # "..." stands for more items
    _agrees(shown, actual)
    off = json.loads(json.dumps(shown, default=float))
    off["probabilities"][0][0] += 0.0001  # one more in the last printed digit
    with pytest.raises(AssertionError, match="probabilities"):
        _agrees(shown, off)
    with pytest.raises(AssertionError, match="feature_names"):
        _agrees(shown, {**actual, "feature_names": actual["feature_names"][:4]})


def test_the_command_lines_parse():
    parser = build_parser()
    lines = [line.split("  #")[0].strip() for page in PAGES
             for _, language, body in _blocks(page.read_text()) if language == "bash"
             for line in body.replace("\\\n", " ").splitlines()]
    commands = [line for line in lines if line.startswith("scoring ") and ELIDED not in line]
    assert len(commands) >= 8, commands
    for command in commands:
        try:
            parser.parse_args(shlex.split(command)[1:])
        except SystemExit:
            pytest.fail(f"the docs' command does not parse: {command}")


def test_every_route_is_in_the_endpoints_table():
    table = _section(README.read_text(), "### Endpoints")
    listed = set(re.findall(r"`(?:GET|POST) (/[^` ?]*)", table))
    prefixes = [path.removesuffix(ELIDED) for path in listed if path.endswith(ELIDED)]
    missing = {path for path in KNOWN_PATHS
               if path not in listed and not path.startswith(tuple(prefixes))}
    assert not missing, f"routes missing from the README's endpoints table: {missing}"
    unknown = {path for path in listed if path not in KNOWN_PATHS and path[:-3] not in prefixes}
    assert not unknown, f"the README's endpoints table lists unknown routes: {unknown}"


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings."""
    headings = re.findall(r"^#+ (.+)$", page.read_text(), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_the_links_between_pages_lead_somewhere():
    for page in PAGES:
        prose = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", prose):
            if target.startswith(("http://", "https://")):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            assert linked.exists(), f"{page.relative_to(ROOT)} links to missing {target}"
            if anchor:
                assert anchor in _anchors(linked), \
                    f"{page.relative_to(ROOT)} links to missing heading {target}"


@pytest.mark.integration
def test_the_readme_predict_example_is_what_the_demo_answers(tmp_path, servers):
    """`scoring demo` in a fresh BentoML home, served: the README's curl body gets the
    README's answer, to the digits it prints; `/docs` is the Swagger UI."""
    home = tmp_path / "home"
    demo = subprocess.run([sys.executable, "-m", "scoring.cli", "demo"], cwd=ROOT,
                          env={**os.environ, "BENTOML_HOME": str(home),
                               "BENTOML_DO_NOT_TRACK": "True"},
                          capture_output=True, text=True, timeout=900)
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert "FutureWarning" not in demo.stderr  # the seed's probability=True is deprecated
    server = servers.start(None, home, tmp_path / "serve.log", bundle=demo.stdout.split()[-1])
    try:
        body, answer = _predict_example()
        got = requests.post(server.url + "/predict", json=body, timeout=60)
        assert got.status_code == 200, got.text
        _agrees(_shown(answer), got.json())
        docs = requests.get(server.url + "/docs", timeout=30)
        assert docs.status_code == 200 and "swagger-ui" in docs.text, docs.url
    finally:
        servers.stop(server)


@pytest.mark.integration
@pytest.mark.parametrize("index", [0, 1])
def test_the_readme_python_runs(index, tmp_path):
    """The README's Python blocks, as printed, in a fresh directory and BentoML home."""
    blocks = [body for _, language, body in _blocks(README.read_text()) if language == "python"]
    assert len(blocks) == 2, "the README's Python blocks changed: update this test"
    run = subprocess.run([sys.executable, "-c", blocks[index]], cwd=tmp_path,
                         env={**os.environ, "BENTOML_HOME": str(tmp_path / "home"),
                              "BENTOML_DO_NOT_TRACK": "True",
                              "PYTHONPATH": os.pathsep.join(
                                  [str(ROOT), os.environ.get("PYTHONPATH", "")])},
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "FutureWarning" not in run.stderr, run.stderr[-3000:]
    saved = {0: tmp_path / "home" / "models" / "credit",
             1: tmp_path / "my_directory" / "scoring_explainer.json"}[index]
    assert saved.exists(), sorted(p.name for p in tmp_path.iterdir())
