"""Write the bentofile the image is built from: the project's ``bentofile.yaml`` plus what
an image needs that ``bentoml serve`` on this machine does not.

- ``docker.base_image``: the registry-free base image (``deploy/image/base.sh``);
- ``docker.dockerfile_template``: ``deploy/image/Dockerfile.j2`` (package index as a build
  argument, not baked into the image);
- ``envs``: ``SCORING_BUNDLE`` set to the exact tag of the bundle packed into the bento;
- ``python.packages``: pinned to the versions the bundle was saved with (its ``bundle.json``:
  scikit-learn, shap, numpy, scipy, ...) and, for the others, to the versions installed
  here, so the container computes what ``bentoml serve`` here computes (the loader refuses a
  bundle under other library versions).

Usage: ``python deploy/image/bentofile.py --base-image IMAGE --output FILE``; reads
``SCORING_BUNDLE`` and ``BENTOML_HOME`` as BentoML does; prints the bundle's tag.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import sys
from pathlib import Path

import bentoml
import yaml

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
DEFAULT_BUNDLE = "breast_cancer_svc:latest"
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def bundle_versions(model_path: Path) -> dict[str, str]:
    """``{distribution: version}`` recorded in a bundle's manifest."""
    manifest = json.loads((model_path / "bundle.json").read_text())
    return {_canonical(k): v for k, v in manifest.get("versions", {}).items()}


def pinned(packages: list[str], recorded: dict[str, str]) -> list[str]:
    """``packages`` (requirement strings) pinned to ``recorded`` versions, else to the
    installed ones; recorded distributions not in ``packages`` are added."""
    out, seen = [], set()
    for requirement in packages:
        match = _NAME.match(requirement)
        if match is None:
            raise SystemExit(f"bentofile.py: cannot read the package name in {requirement!r}")
        name = _canonical(match.group(1))
        seen.add(name)
        try:
            version = recorded.get(name) or importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            raise SystemExit(f"bentofile.py: {name} is in bentofile.yaml but not installed "
                             f"here; run `make install`") from None
        out.append(f"{name}=={version}")
    out += [f"{name}=={version}" for name, version in sorted(recorded.items())
            if name not in seen]
    return out


def image_bentofile(base: dict, base_image: str, bundle_tag: str,
                    recorded: dict[str, str]) -> dict:
    config = dict(base)
    python = dict(config.get("python") or {})
    python["packages"] = pinned(list(python.get("packages") or []), recorded)
    python["lock_packages"] = False  # pinned above
    config["python"] = python
    config["docker"] = {"base_image": base_image,
                        "dockerfile_template": str((HERE / "Dockerfile.j2").relative_to(ROOT))}
    envs = [e for e in config.get("envs") or [] if e.get("name") != "SCORING_BUNDLE"]
    config["envs"] = envs + [{"name": "SCORING_BUNDLE", "value": bundle_tag}]
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-image", required=True)
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--bentofile", type=Path, default=ROOT / "bentofile.yaml")
    args = parser.parse_args(argv)

    requested = os.environ.get("SCORING_BUNDLE", DEFAULT_BUNDLE)
    try:
        model = bentoml.models.get(requested)
    except bentoml.exceptions.NotFound:
        print(f"bentofile.py: bundle {requested} is not in the BentoML model store "
              f"({os.environ.get('BENTOML_HOME', '~/bentoml')}); "
              "build it first (`make build-demo`) or set SCORING_BUNDLE", file=sys.stderr)
        return 2
    config = image_bentofile(yaml.safe_load(args.bentofile.read_text()), args.base_image,
                             str(model.tag), bundle_versions(Path(model.path)))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("# written by deploy/image/bentofile.py from "
                           f"{args.bentofile.name}; do not edit\n"
                           + yaml.safe_dump(config, sort_keys=False))
    print(model.tag)
    return 0


if __name__ == "__main__":
    sys.exit(main())
