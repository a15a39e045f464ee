"""Write deploy/kubernetes/prometheusrule.yaml from deploy/prometheus/rules.yml."""

from __future__ import annotations

from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parent
RULES = DEPLOY / "prometheus" / "rules.yml"
TARGET = DEPLOY / "kubernetes" / "prometheusrule.yaml"
_HEADER = ("# Generated from deploy/prometheus/rules.yml for the Prometheus Operator.\n"
           "# Regenerate with `python deploy/prometheusrule.py` (tests/test_deploy.py checks).\n")


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (PromQL) as `|` blocks, like the source file."""


_BlockDumper.add_representer(
    str, lambda dumper, value: dumper.represent_scalar(
        "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None))


def render(rules: Path = RULES) -> str:
    """The PrometheusRule manifest holding the rule groups of ``rules``."""
    groups = yaml.safe_load(rules.read_text())["groups"]
    manifest = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
                "metadata": {"name": "scoring", "labels": {"app.kubernetes.io/name": "scoring"}},
                "spec": {"groups": groups}}
    return _HEADER + yaml.dump(manifest, Dumper=_BlockDumper, sort_keys=False, width=100)


if __name__ == "__main__":
    TARGET.write_text(render())
    print(f"wrote {TARGET}")
