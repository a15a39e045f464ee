"""Write deploy/prometheus/attribution.yml: recording rules of the live attribution shares
the service exports (``scoring_attribution_*``, see scoring/monitoring/attribution.py)
and the alert when they move away from the training-time reference.

    python deploy/attribution_rules.py --threshold 0.2 --window 1h --min-rows 100 --for 15m
    python deploy/prometheusrule.py          # then the Kubernetes manifest

The file records the command that wrote it; tests/test_attribution_monitoring.py checks
that it is what that command writes.
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import yaml

TARGET = Path(__file__).resolve().parent / "prometheus" / "attribution.yml"
COMMAND = "python deploy/attribution_rules.py"
_DURATION = re.compile(r"([0-9]+(ms|s|m|h|d|w|y))+")


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (PromQL) as `|` blocks, as in rules.yml."""


_BlockDumper.add_representer(
    str, lambda dumper, value: dumper.represent_scalar(
        "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None))


def rule_names(window: str) -> dict[str, str]:
    """The recorded series' names for a ``window`` (a Prometheus duration)."""
    return {"share": f"output_feature:scoring_attribution_share:mean{window}",
            "reference": "output_feature:scoring_attribution_reference_share:max",
            "rows": f"output:scoring_attribution_rows:increase{window}",
            "distance": f"output:scoring_attribution_share:tv_distance{window}"}


def rule_group(threshold: float = 0.2, window: str = "1h", min_rows: int = 100,
               for_: str = "15m") -> dict:
    """The ``scoring.attribution`` rule group: ``ScoringAttributionDrift`` fires when the
    total-variation distance between the live shares over ``window`` and the reference
    exceeds ``threshold`` (0..1) for ``for_``, once ``min_rows`` rows were explained in
    the window (fewer make the live shares too noisy to judge)."""
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
    for name, duration in (("window", window), ("for", for_)):
        if not _DURATION.fullmatch(duration):
            raise ValueError(f"{name} must be a Prometheus duration such as 1h, got "
                             f"{duration!r}")
    if min_rows < 1:
        raise ValueError(f"min_rows must be a positive integer, got {min_rows!r}")
    names = rule_names(window)
    return {"name": "scoring.attribution", "rules": [
        # mean per-row share of each monitored feature over the window, over all replicas
        {"record": names["share"],
         "expr": f"sum by (output, feature) (rate(scoring_attribution_share_total[{window}]))\n"
                 f"/ on (output) group_left\n"
                 f"sum by (output) (rate(scoring_attribution_rows_total[{window}]))\n"},
        # every replica serving the bundle exports the same reference
        {"record": names["reference"],
         "expr": "max by (output, feature) (scoring_attribution_reference_share)"},
        {"record": names["rows"],
         "expr": f"sum by (output) (increase(scoring_attribution_rows_total[{window}]))"},
        # total-variation distance, 0 (same shares) .. 1 (disjoint): the share of the
        # attribution that moved between features. Unlike a population-stability index it
        # stays finite when a feature's share drops to zero
        {"record": names["distance"],
         "expr": f"0.5 * sum by (output) (abs(\n"
                 f"  {names['share']}\n"
                 f"  - on (output, feature) {names['reference']}\n"
                 f"))\n"},
        {"alert": "ScoringAttributionDrift",
         "expr": f"{names['distance']} > {threshold:g}\n"
                 f"and on (output) {names['rows']} >= {min_rows}\n",
         "for": for_,
         "labels": {"severity": "ticket"},
         "annotations": {
             "summary": f"{{{{ $value | humanizePercentage }}}} of the attribution of "
                        f"output {{{{ $labels.output }}}} moved between features from the "
                        f"training reference (total variation over {window}, threshold "
                        f"{threshold:g})",
             "description": f"A feature carries a different share of the explanations "
                            f"than at training time: data drift or a broken upstream "
                            f"feature. Compare {names['share']} with {names['reference']} "
                            f"per feature (dashboard panel 'Attribution share: live vs "
                            f"reference')."}},
    ]}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threshold", type=float, default=0.2,
                        help="total-variation distance that fires the alert (default 0.2)")
    parser.add_argument("--window", default="1h", help="window of the live shares (1h)")
    parser.add_argument("--min-rows", type=int, default=100,
                        help="explained rows in the window before the alert can fire (100)")
    parser.add_argument("--for", dest="for_", default="15m",
                        help="how long the distance stays above the threshold (15m)")
    return parser


def render(threshold: float = 0.2, window: str = "1h", min_rows: int = 100,
           for_: str = "15m") -> str:
    """The rule file, headed by the command that writes it."""
    group = rule_group(threshold, window, min_rows, for_)
    command = (f"{COMMAND} --threshold {threshold:g} --window {window} --min-rows {min_rows} "
               f"--for {for_}")
    header = (f"# Generated by `{command}`:\n"
              "# change the options there, not this file, then run "
              "`python deploy/prometheusrule.py`.\n")
    return header + yaml.dump({"groups": [group]}, Dumper=_BlockDumper, sort_keys=False,
                              width=100)


def recorded_options(text: str) -> dict:
    """The options of the command a rule file says wrote it (:func:`render`'s keywords)."""
    command = re.search(r"`([^`]*)`", text.splitlines()[0]).group(1)
    return vars(_parser().parse_args(shlex.split(command)[len(shlex.split(COMMAND)):]))


if __name__ == "__main__":
    TARGET.write_text(render(**vars(_parser().parse_args())))
    print(f"wrote {TARGET}")
