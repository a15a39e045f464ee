"""Write deploy/kubernetes/prometheusrule.yaml from the rule files of
deploy/prometheus/prometheus.yml."""

from __future__ import annotations

from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parent
CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
TARGET = DEPLOY / "kubernetes" / "prometheusrule.yaml"
_HEADER = ("# Generated from deploy/prometheus's rule files for the Prometheus Operator.\n"
           "# Regenerate with `python deploy/prometheusrule.py` (tests/test_deploy.py checks).\n")


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (PromQL) as `|` blocks, like the source file."""


_BlockDumper.add_representer(
    str, lambda dumper, value: dumper.represent_scalar(
        "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None))


def render(config: Path = CONFIG) -> str:
    """The PrometheusRule manifest holding the rule groups of every rule file ``config``
    (a Prometheus configuration) names."""
    groups = [group for name in yaml.safe_load(config.read_text())["rule_files"]
              for group in yaml.safe_load((config.parent / name).read_text())["groups"]]
    manifest = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
                "metadata": {"name": "scoring", "labels": {"app.kubernetes.io/name": "scoring"}},
                "spec": {"groups": groups}}
    return _HEADER + yaml.dump(manifest, Dumper=_BlockDumper, sort_keys=False, width=100)


if __name__ == "__main__":
    TARGET.write_text(render())
    print(f"wrote {TARGET}")
