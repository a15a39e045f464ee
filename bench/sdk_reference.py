"""The Azure SDK's own ``KernelScoringExplainer`` on the seed's SVC, for ``bench.run``.

Runs inside a separate environment that has ``azureml-interpret`` (``make sdk-venv``: it pins
shap 0.44 and numpy 1.x, which this project does not use), so it takes plain arrays, not
pickles: ``python bench/sdk_reference.py IN.npz OUT.npz``. IN holds ``X_train``, ``y_train``
and ``rows``; the script refits the seed's SVC on them exactly as the seed does, builds
``TabularExplainer`` and ``KernelScoringExplainer`` as the seed does, and writes the values
for ``rows`` (``(n_classes, n_rows, n_features)``), the milliseconds per row (one row per
call) and the model's probabilities (so the caller can check it is the same model).
"""

import sys
import time
import warnings

import numpy as np


def main(source: str, target: str) -> int:
    warnings.filterwarnings("ignore")
    from azureml.interpret.scoring.scoring_explainers.base import KernelScoringExplainer
    from interpret.ext.blackbox import TabularExplainer
    from sklearn import svm

    data = np.load(source)
    X_train, y_train, rows = data["X_train"], data["y_train"], data["rows"]
    model = svm.SVC(gamma=0.001, C=100.0, probability=True, random_state=0).fit(X_train, y_train)
    started = time.perf_counter()
    explainer = KernelScoringExplainer(TabularExplainer(model, X_train), X_train)
    fit_seconds = time.perf_counter() - started
    values, times = [], []
    for i in range(len(rows)):
        started = time.perf_counter()
        values.append(np.asarray(explainer.explain(rows[i:i + 1]), dtype=float))
        times.append(time.perf_counter() - started)
        print(f"[sdk] row {i + 1}/{len(rows)}: {times[-1]:.1f} s", file=sys.stderr, flush=True)
    from importlib.metadata import version

    np.savez(target, values=np.concatenate(values, axis=1), row_ms=1e3 * np.asarray(times),
             fit_seconds=fit_seconds, outputs=model.predict_proba(rows),
             versions=np.array([f"{name} {version(name)}" for name in
                                ("azureml-interpret", "shap", "scikit-learn")]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:3]))
