"""What every scoring explainer shares: fitting bookkeeping and the request-path ``explain``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.exceptions import NotFittedError

from scoring.explanation import Explanation
from scoring.model_input import ModelInput
from scoring.model_output import ModelFunction, model_fingerprint

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
        inputs = ModelInput(model, X, features=features, classes=classes,
                            transformations=transformations, model_output=self.model_output)
        rows, inputs.rows = inputs.rows, None  # a saved explainer need not carry the data
        self.model_input_ = inputs
        self.model_function_ = inputs.model_function
        self.input_schema_ = inputs.input_schema
        self.raw_feature_map_ = inputs.raw_feature_map
        self.features_ = inputs.engineered_features
        self.raw_features_ = inputs.raw_features
        self.classes_ = inputs.classes
        engineered = inputs.engineer(rows)
        self.model_fingerprint_ = model_fingerprint(model)
        self.probe_rows_ = _head(rows, _N_PROBE_ROWS)
        self.probe_outputs_ = self.model_function_(_head(engineered, _N_PROBE_ROWS))
        self._fit(engineered)
        return self

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
        return self.model_input_.engineer(rows)

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
        return self.model_input_.expected_layout(self.expected_values_)

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
        return self.model_input_.layout(self._values(self._engineer(rows), outputs),
                                        self.expected_values_, get_raw)[0]

    def _values(self, X: Any, outputs: Any) -> np.ndarray:
        """``(n, M, O)`` for engineered rows ``X``."""
        if outputs is None:
            return self._shap_values(X)  # (n, M, O)
        return self._shap_values_from_outputs(X, self._check_outputs(outputs, len(X)))

    def model_outputs(self, rows: Any) -> np.ndarray:
        """The explained model output for validated rows, ``(n_rows, n_outputs)``."""
        return self.model_function_(self._engineer(rows))

    def explain_local(self, data: Any, get_raw: bool = False,
                      outputs: Any = None) -> Explanation:
        """:meth:`explain` wrapped in an :class:`Explanation` (``outputs`` as in
        :meth:`explain_rows`)."""
        rows = self.validate(data)
        X = self._engineer(rows)  # once: the transformations can cost more than explaining
        return self.model_input_.explanation(self._values(X, outputs), self.expected_values_,
                                             rows, X, get_raw, self.method)

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
