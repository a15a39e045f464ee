"""Which output of a scikit-learn model is explained, and a fingerprint of the model."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.base import is_classifier
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from scoring.model.boosters import booster_library, margin_function

OUTPUTS = ("predict_proba", "predict", "decision_function")


def check_model(model: Any, what: str = "model") -> None:
    """Refuse objects that cannot be explained: no predict, or not fitted yet."""
    if not hasattr(model, "predict"):
        raise TypeError(f"{what} must have a predict method; got {type(model).__name__}")
    try:
        check_is_fitted(model)
    except NotFittedError:
        raise NotFittedError(
            f"{what} {type(model).__name__} is not fitted; call fit on it before explaining"
        ) from None
    except TypeError:
        pass  # not a scikit-learn estimator: trust that it is ready


def default_output(model: Any) -> str:
    """``predict_proba`` for classifiers (as the Azure SDK explains), ``predict`` otherwise."""
    # CatBoost's regressors have an empty classes_
    if is_classifier(model) or np.size(getattr(model, "classes_", [])) > 0:
        if not hasattr(model, "predict_proba"):
            return "decision_function"
        return "predict_proba"
    return "predict"


class ModelFunction:
    """``f(X) -> (n_rows, n_outputs)``: the model output being explained, always 2-D.

    For ``predict_proba`` there is one output per class; ``decision_function`` of a binary
    classifier gives one column (the log-odds of the positive class); ``predict`` of a
    regressor gives one column. XGBoost's, LightGBM's and CatBoost's ``decision_function``
    is their raw margin (``output_margin``, ``raw_score``, ``RawFormulaVal``).
    """

    def __init__(self, model: Any, output: str | None = None) -> None:
        check_model(model)
        output = output or default_output(model)
        if output not in OUTPUTS:
            raise ValueError(f"model_output must be one of {OUTPUTS}, got {output!r}")
        if output == "decision_function" and booster_library(model) is not None:
            self._method = margin_function(model)
        elif hasattr(model, output):
            self._method = getattr(model, output)
        else:
            raise ValueError(f"{type(model).__name__} has no {output} method to explain")
        self.model = model
        self.output = output

    def __call__(self, X: Any) -> np.ndarray:
        out = np.asarray(self._method(self.named(X)), dtype=float)
        return out.reshape(len(out), -1)

    def named(self, X: Any) -> Any:
        """A numeric array in the model's own column order as a DataFrame named as the
        model was fitted, so scikit-learn checks the names instead of warning on every
        call (explainers build such arrays: backgrounds, coalitions, walks)."""
        names = getattr(self.model, "feature_names_in_", None)
        if names is not None and isinstance(X, np.ndarray) and X.ndim == 2 and (
                X.shape[1] == len(names)):
            return pd.DataFrame(X, columns=names, copy=False)
        return X


def model_fingerprint(model: Any) -> str:
    """sha256 of the pickled model: identifies the exact fitted object an explainer serves."""
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return hashlib.sha256(buffer.getvalue()).hexdigest()
