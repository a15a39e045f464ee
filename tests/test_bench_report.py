"""bench/README.md and the README's benchmark table are what `python -m bench.report`
renders from the committed result files: numbers and files never disagree."""

from __future__ import annotations

import json
import shutil

from bench import report


def test_the_benchmark_pages_are_rendered_from_the_results():
    for path, text in report.rendered().items():
        assert path.read_text() == text, \
            f"{path.relative_to(report.ROOT)} is out of date: run python -m bench.report"


def test_each_case_comes_from_its_latest_full_run(tmp_path):
    for path in report.RESULTS.glob("*.json"):
        shutil.copy(path, tmp_path)
    runs = report.read_results("pipelines", tmp_path)
    full = [r for r in runs if not r.quick and any(
        c["name"] == "credit_logreg" for c in r.data["cases"])][-1]
    case = next(c for c in full.data["cases"] if c["name"] == "credit_logreg")
    label = report._case_label(case)
    before = report._ratio(report._speedup(case))

    # a later full run of one case: that case's row comes from it, the others stay
    slower = json.loads(json.dumps(case))
    slower["anchor"]["row_ms"] *= 3
    later = {**full.data, "cases": [slower]}
    (tmp_path / "pipelines-29990101T000000Z.json").write_text(json.dumps(later))
    # a quick run later still does not replace a full run
    quick = json.loads(json.dumps(case))
    quick["anchor"]["row_ms"] *= 7
    (tmp_path / "pipelines-29990102T000000Z.json").write_text(
        json.dumps({**full.data, "quick": True, "cases": [quick]}))

    block = report.readme_block(report.read_results("pipelines", tmp_path))
    row = next(line for line in block.splitlines() if line.startswith(f"| {label} |"))
    assert row.endswith(f"| {report._ratio(report._speedup(slower))} |"), row
    assert before not in row
    assert "pipelines-29990101T000000Z.json" in block
    assert full.name in block  # the other six cases
    assert "pipelines-29990102T000000Z.json" not in block
    page = report.bench_readme(tmp_path)
    assert page.count(f"| {label} |") == 4  # its row in each pipelines table, once
    assert "`bench/results/pipelines-29990101T000000Z.json`" in page


def test_the_check_option_fails_on_a_stale_page(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "README.md"
    stale.write_text(report.BENCH_README.read_text().replace("| 1,046x |", "| 9,999x |"))
    monkeypatch.setattr(report, "BENCH_README", stale)
    assert report.main(["--check"]) == 1
    assert f"out of date: {stale}" in capsys.readouterr().err
    assert stale.read_text().count("9,999x") == 1  # --check writes nothing
    assert report.main([]) == 0
    assert stale.read_text() == report.bench_readme()


def test_the_serving_table_comes_from_the_latest_load_run(tmp_path):
    for path in report.RESULTS.glob("load-*.json"):
        shutil.copy(path, tmp_path)
    latest = report.read_results("load", tmp_path)[-1]
    block = report.load_readme_block([latest])
    ours = next(r for r in latest.data["runs"] if r["server"] == "ours /predict"
                and r["rows"] == 1 and r["connections"] == report.README_CONNECTIONS)
    row = next(line for line in block.splitlines() if line.startswith("| ours /predict |"))
    assert row.startswith(f"| ours /predict | {ours['requests_per_s']:,.0f} |"), row
    assert f"`bench/results/{latest.name}`" in block

    # a later run replaces it in the README's table and on the page
    later = json.loads(json.dumps(latest.data))
    for run in later["runs"]:
        run["requests_per_s"] *= 3
    (tmp_path / "load-29990101T000000Z.json").write_text(json.dumps(later))
    block = report.load_readme_block(report.read_results("load", tmp_path))
    row = next(line for line in block.splitlines() if line.startswith("| ours /predict |"))
    assert row.startswith(f"| ours /predict | {3 * ours['requests_per_s']:,.0f} |"), row
    assert "load-29990101T000000Z.json" in block and latest.name not in block
    page = report.bench_readme(tmp_path)
    assert "## Serving under load" in page and "load-29990101T000000Z.json" in page
