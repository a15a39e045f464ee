"""The framework's ceiling for `make load`: one BentoML worker returning the model's
``predict`` and ``predict_proba``, no validation beyond the types, no explanation.

    BENCH_MODEL_FILE=model.joblib bentoml serve bench.bare_service:BareModel

The model file is the one `python -m bench.load` writes from the served bundle (a joblib
file of our own making, loaded here as MLServer's scikit-learn runtime loads it).
"""

from __future__ import annotations

import os

import bentoml
import joblib
import numpy as np


@bentoml.service(workers=1, traffic={"timeout": 60})
class BareModel:
    """``POST /predict`` with ``{"rows": [[...], ...]}``."""

    def __init__(self) -> None:
        self.model = joblib.load(os.environ["BENCH_MODEL_FILE"])

    @bentoml.api
    def predict(self, rows: list[list[float]]) -> dict:
        X = np.asarray(rows, dtype=float)
        return {"predictions": self.model.predict(X).tolist(),
                "probabilities": self.model.predict_proba(X).tolist()}
