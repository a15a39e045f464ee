"""What every scoring explainer shares: fitting bookkeeping and the request-path ``explain``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.exceptions import NotFittedError

from scoring.explanation import Explanation
from scoring.input_schema import InputSchema
from scoring.model_output import ModelFunction, model_fingerprint
from scoring.raw_features import RawFeatureMap

_N_PROBE_ROWS = 5


class ScoringExplainer:
    """Base class: a light explainer fitted offline and called on the request path.

    Subclasses set ``method`` and implement ``_fit(X)`` (learn from engineered rows) and
    ``_shap_values(X) -> (n_rows, n_features, n_outputs)``.

    As in the Azure SDK, passing an explainer (``TabularExplainer``...) to the constructor
    fits at once from its model, initialization examples, features, classes and
    transformations. Otherwise call :meth:`fit`.
    """

    method = "base"

    def __init__(self, explainer: Any = None, initialization_examples: Any = None, *,
                 model_output: str | None = None, random_state: int | None = 0) -> None:
        self.explainer = explainer
        self.initialization_examples = initialization_examples
        self.model_output = model_output
        self.random_state = random_state
        if explainer is not None:
            self.fit(
                explainer.model,
                explainer.initialization_examples if initialization_examples is None
                else initialization_examples,
                features=explainer.features, classes=explainer.classes,
                transformations=explainer.transformations,
            )
        # the source explainer holds heavy state (shap explainers, data): not worth saving
        self.explainer = None
        self.initialization_examples = None

    # -- fitting -----------------------------------------------------------------------
    def fit(self, model: Any, X: Any, *, features: Any = None, classes: Any = None,
            transformations: Any = None) -> ScoringExplainer:
        """Learn from ``model`` and training rows ``X`` (raw rows when ``transformations``
        is given, as in the Azure SDK; the model then takes the transformed rows)."""
        if X is None:
            raise ValueError("initialization_examples (training rows) are required to fit a "
                             "scoring explainer")
        self.model_function_ = ModelFunction(model, self.model_output)
        if transformations is not None:
            self.raw_feature_map_ = RawFeatureMap(transformations, X)
            self.features_ = self.raw_feature_map_.engineered_features
            self.raw_features_ = self.raw_feature_map_.raw_features
        else:
            self.raw_feature_map_ = None
        self.input_schema_ = InputSchema.from_data(
            X, None if transformations is not None else features)
        if transformations is None:
            self.features_ = list(self.input_schema_.columns)
            self.raw_features_ = list(self.features_)
        self.input_schema_.allow_nan = True  # read the training rows as they are
        rows = self.input_schema_.validate(X)
        if len(rows) < 2:
            raise ValueError(f"initialization_examples has {len(rows)} row(s); at least 2 are "
                             "needed to form a background")
        engineered = self._engineer(rows)
        self.input_schema_.allow_nan = self._accepts_nan(rows)
        if not self.input_schema_.allow_nan:
            self.input_schema_.validate(rows)  # InputError naming the row with a NaN
        model_classes = self.model_function_.classes
        if classes is not None and model_classes is not None:
            if len(classes) != len(model_classes):
                raise ValueError(f"{len(classes)} class names given for a model with "
                                 f"{len(model_classes)} classes {model_classes}")
            model_classes = list(classes)
        self.classes_ = model_classes
        self.model_fingerprint_ = model_fingerprint(model)
        self.probe_rows_ = _head(rows, _N_PROBE_ROWS)
        self.probe_outputs_ = self.model_function_(_head(engineered, _N_PROBE_ROWS))
        self._fit(engineered)
        return self

    def _accepts_nan(self, rows: Any) -> bool:
        """Whether the model (after the transformations) takes a missing value in the first
        numeric column: a pipeline with an imputer does, a bare SVC does not."""
        numeric = [c for c, k in zip(self.input_schema_.columns, self.input_schema_.kinds,
                                     strict=True) if k == "numeric"]
        if not numeric:
            return False
        if isinstance(rows, pd.DataFrame):
            probe = rows.iloc[:1].copy()
            probe[numeric[0]] = np.nan
        else:
            probe = np.array(rows[:1], dtype=float)
            probe[0, 0] = np.nan
        try:
            out = self.model_function_(self._engineer(probe))
        except (ValueError, TypeError):
            return False
        return bool(np.isfinite(out).all())

    def _fit(self, X: Any) -> None:
        raise NotImplementedError

    def _shap_values(self, X: Any) -> np.ndarray:
        raise NotImplementedError

    def _shap_values_from_outputs(self, X: Any, outputs: np.ndarray) -> np.ndarray:
        """``_shap_values`` given the model outputs on ``X``; by default they are unused."""
        return self._shap_values(X)

    def _check_outputs(self, outputs: Any, n_rows: int) -> np.ndarray:
        outputs = np.asarray(outputs, dtype=float)
        n_outputs = len(np.atleast_1d(self.expected_values_))
        if outputs.ndim == 1 and n_outputs == 1:
            outputs = outputs[:, None]
        if outputs.shape != (n_rows, n_outputs):
            raise ValueError(f"outputs must have shape ({n_rows}, {n_outputs}) (the explained "
                             f"model output '{self.model_function_.output}' for each row), "
                             f"got {outputs.shape}")
        return outputs

    def _engineer(self, rows: Any) -> Any:
        if self.raw_feature_map_ is None:
            return rows
        return self.raw_feature_map_.transform(rows)

    # -- request path ------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_function_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted; call fit(model, X) "
                                 "or build it with distill(...) first")

    @property
    def model(self) -> Any:
        self._check_fitted()
        return self.model_function_.model

    @property
    def expected_values(self) -> float | np.ndarray:
        """``f`` averaged over the background: a float, or ``(n_classes,)``."""
        self._check_fitted()
        ev = np.asarray(self.expected_values_, dtype=float).reshape(-1)
        return ev if self._has_class_axis else float(ev[0])

    @property
    def _has_class_axis(self) -> bool:
        # the model function has a class axis for predict_proba and for multi-class
        # decision_function; a binary decision_function is one log-odds output
        return self.classes_ is not None

    def explain(self, data: Any, get_raw: bool = False) -> np.ndarray:
        """Local importance values for ``data`` (one row or a batch; array, DataFrame or
        records), ``(n_rows, n_features)`` or ``(n_classes, n_rows, n_features)``.

        With ``get_raw=True`` (only when fitted with transformations) values are summed onto
        the raw columns; otherwise they are per engineered feature.
        """
        return self.explain_rows(self.validate(data), get_raw=get_raw)

    def validate(self, data: Any) -> Any:
        """Check user rows against the training schema (raises ``InputError``)."""
        self._check_fitted()
        return self.input_schema_.validate(data)

    def explain_rows(self, rows: Any, get_raw: bool = False,
                     outputs: Any = None) -> np.ndarray:
        """:meth:`explain` on rows already returned by :meth:`validate`.

        ``outputs``: the explained model outputs for ``rows`` if the caller has them
        already (as :meth:`model_outputs` returns them, ``(n_rows, n_outputs)``, or
        ``(n_rows,)`` for one output); explainers that need ``f(x)`` then skip that model
        call. Others ignore it.
        """
        if get_raw and self.raw_feature_map_ is None:
            raise ValueError("get_raw=True needs an explainer fitted with transformations; "
                             "this one explains the model's own input features")
        X = self._engineer(rows)
        if outputs is None:
            phi = self._shap_values(X)  # (n, M, O)
        else:
            phi = self._shap_values_from_outputs(X, self._check_outputs(outputs, len(X)))
        if get_raw:
            phi = np.einsum("imo,mr->iro", phi, self.raw_feature_map_.matrix)
        if self._has_class_axis:
            return np.transpose(phi, (2, 0, 1))
        return phi[:, :, 0]

    def model_outputs(self, rows: Any) -> np.ndarray:
        """The explained model output for validated rows, ``(n_rows, n_outputs)``."""
        return self.model_function_(self._engineer(rows))

    def explain_local(self, data: Any, get_raw: bool = False) -> Explanation:
        """:meth:`explain` wrapped in an :class:`Explanation`."""
        rows = self.validate(data)
        values = self.explain_rows(rows, get_raw=get_raw)
        features = self.raw_features_ if get_raw else self.features_
        shown = rows if get_raw or self.raw_feature_map_ is None else self._engineer(rows)
        return Explanation(
            features, local_importance_values=values, expected_values=self.expected_values,
            classes=self.classes_ if self._has_class_axis else None,
            data=np.asarray(shown.to_numpy() if isinstance(shown, pd.DataFrame) else shown),
            method=self.method, model_output=self.model_function_.output,
            raw=get_raw or self.raw_feature_map_ is None,
        )

    def verify_model(self, model: Any) -> None:
        """Raise ``ValueError`` unless ``model`` behaves as the one this explainer was built
        for (same outputs on the stored probe rows)."""
        self._check_fitted()
        probe = ModelFunction(model, self.model_function_.output)(
            self._engineer(self.probe_rows_))
        if probe.shape != self.probe_outputs_.shape or not np.allclose(
                probe, self.probe_outputs_, rtol=1e-7, atol=1e-10):
            raise ValueError(
                f"this {type(self).__name__} was built for a different model: its outputs on "
                "the explainer's probe rows differ from the ones recorded at fit time "
                f"(model fingerprint {self.model_fingerprint_[:12]})"
            )

    def get_params(self) -> dict:
        """The constructor parameters that matter for reports and metadata."""
        return {"model_output": self.model_function_.output if hasattr(
            self, "model_function_") else self.model_output, "random_state": self.random_state}


def _head(rows: Any, n: int) -> Any:
    return rows.iloc[:n] if isinstance(rows, pd.DataFrame) else rows[:n]
