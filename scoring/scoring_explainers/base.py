"""What every scoring explainer shares: fitting from a model spec and the request path."""

from __future__ import annotations

import inspect
import time
from typing import Any, ClassVar

import numpy as np
from sklearn.exceptions import NotFittedError

from scoring.core.codec import StateError, decode, encode
from scoring.core.explanation import Explanation
from scoring.model.function import default_output
from scoring.model.rows import dense, sample_rows
from scoring.model.spec import ModelSpec
from scoring.monitoring.attribution import with_reference
from scoring.scoring_explainers.request import ScoredRows, model_errors, refuse_non_finite

# explained outputs the predictions already computed: the explainer can reuse them
_REUSED_OUTPUTS = {"predict_proba": "probabilities", "predict": "predictions"}


class ScoringExplainer:
    """Base class: a light explainer fitted offline and called on the request path.

    Subclasses set ``method``, may narrow :meth:`unsupported` and implement
    ``_fit(X)`` (learn from the model-input training rows) and ``_shap_values(X, outputs)
    -> (n_rows, n_features, n_outputs)``.

    As in the Azure SDK, passing an explainer (``TabularExplainer``...) to the constructor
    fits at once from its model, initialization examples, features, classes and
    transformations. Otherwise call :meth:`fit`.

    Attributes
    ----------
    spec_ : :class:`~scoring.model.spec.ModelSpec`, what the model takes and gives.
    expected_values_ : ``(n_outputs,)`` the explained output averaged over the background.
    report_ : the :class:`~scoring.evaluation.report.DistillReport` when built by
        :func:`~scoring.distill`, else ``None``. Not part of the explainer's saved state:
        a bundle saves it beside the explainer.
    """

    method: ClassVar[str] = "base"
    # fitted attributes that are not saved but rebuilt by _restore() when loaded
    transient: ClassVar[tuple[str, ...]] = ()
    # whether the explainer can play each raw column's engineered columns as one player
    plays_raw_columns: ClassVar[bool] = False

    def __init__(self, explainer: Any = None, initialization_examples: Any = None, *,
                 model_output: str | None = None, random_state: int | None = 0,
                 players: str = "auto") -> None:
        self.model_output = model_output
        self.random_state = random_state
        self.players = players
        self.report_ = None
        if explainer is not None:
            self.fit(explainer.model,
                     explainer.initialization_examples if initialization_examples is None
                     else initialization_examples,
                     features=explainer.features, classes=explainer.classes,
                     transformations=explainer.transformations)

    # -- what it can explain ----------------------------------------------------------------
    @classmethod
    def default_output(cls, model: Any) -> str:
        """The model output explained when ``model_output`` is not given."""
        return default_output(model)

    @classmethod
    def unsupported(cls, model: Any, output: str) -> str | None:
        """Why this explainer cannot explain ``output`` of ``model`` (the estimator that
        takes the model-input rows), or ``None`` when it can."""
        return None

    # -- fitting -----------------------------------------------------------------------
    def fit(self, model: Any, X: Any, *, features: Any = None, classes: Any = None,
            transformations: Any = None) -> ScoringExplainer:
        """Learn from ``model`` and training rows ``X`` (raw rows when ``transformations``
        is given, as in the Azure SDK; the model then takes the transformed rows)."""
        if X is None:
            raise ValueError("initialization_examples (training rows) are required to fit a "
                             "scoring explainer")
        output = self.model_output
        if output is None and hasattr(model, "predict"):
            output = self.default_output(model)
        spec, rows = ModelSpec.from_training_rows(
            model, X, features=features, classes=classes, transformations=transformations,
            model_output=output)
        return self.fit_spec(spec, spec.transform(rows))

    def fit_spec(self, spec: ModelSpec, X: Any) -> ScoringExplainer:
        """Learn from the model a spec describes and its training rows ``X`` as the model
        takes them (:meth:`ModelSpec.transform` of the validated rows)."""
        reason = self.unsupported(spec.model, spec.function.output)
        if reason is not None:
            raise TypeError(f"{type(self).__name__} cannot explain "
                            f"{type(spec.model).__name__}: {reason}")
        if self.players not in ("auto", "raw", "engineered"):
            raise ValueError(f"players must be 'auto', 'raw' or 'engineered', got "
                             f"{self.players!r}")
        raw = spec.layout.has_raw and self.plays_raw_columns and self.players != "engineered"
        if self.players == "raw" and not raw:
            raise ValueError(f"players='raw' needs transformations and an explainer that "
                             f"plays raw columns; {type(self).__name__} on this model cannot")
        self.spec_ = spec
        # with transformations, each raw column's engineered columns switch together: the
        # values are then the raw columns' Shapley values, as a user sending raw rows reads
        # them (one-hot columns switched one by one make rows no user could send)
        self.players_ = "raw" if raw else "engineered"
        self.groups_ = spec.raw_map.groups if raw else None
        self._fit(dense(X))
        return self

    def _fit(self, X: Any) -> None:
        raise NotImplementedError

    def model_rows_per_row(self) -> int:
        """Model evaluations per explained row on the request path, given the model
        outputs: a cost no load on the machine moves."""
        return 0

    def _shap_values(self, X: Any, outputs: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError

    def check_fitted(self) -> None:
        """Raise ``NotFittedError`` unless :meth:`fit` has run."""
        if not hasattr(self, "spec_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted; call fit(model, X) "
                                 "or build it with distill(...) first")

    # -- request path ------------------------------------------------------------------
    @property
    def expected_values(self) -> float | np.ndarray:
        """The explained output averaged over the background: a float, or
        ``(n_classes,)``."""
        self.check_fitted()
        return self.spec_.layout.expected(self.expected_values_)

    def shap_values(self, X: Any, outputs: Any = None) -> np.ndarray:
        """Values ``(n_rows, n_features, n_outputs)`` for rows ``X`` as the model takes
        them (validated and transformed by :attr:`spec_`).

        ``outputs``: the explained model output on ``X`` (``(n_rows, n_outputs)``, or
        ``(n_rows,)`` for one output) when the caller has computed it already; explainers
        that need ``f(x)`` then skip that model call, the others ignore it.
        """
        self.check_fitted()
        X = dense(X)
        if outputs is not None:
            outputs = self._check_outputs(outputs, len(X))
        values = self._shap_values(X, outputs)
        if self.spec_.function.output == "predict_proba" and values.shape[-1] == 2:
            # p0 = 1 - p1: the first class's values are the second's, negated, exactly (the
            # model's own two columns differ from that by rounding)
            values[..., 0] = -values[..., 1]
        return values

    def _check_outputs(self, outputs: Any, n_rows: int) -> np.ndarray:
        outputs = np.asarray(outputs, dtype=float)
        n_outputs = len(np.atleast_1d(self.expected_values_))
        if outputs.ndim == 1 and n_outputs == 1:
            outputs = outputs[:, None]
        if outputs.shape != (n_rows, n_outputs):
            raise ValueError(f"outputs must have shape ({n_rows}, {n_outputs}) (the explained "
                             f"model output '{self.spec_.function.output}' for each row), "
                             f"got {outputs.shape}")
        return outputs

    def score(self, data: Any, *, get_raw: bool | None = None, explain: bool = True,
              predict: bool = True, keep_rows: bool = False,
              outputs: bool = False) -> ScoredRows:
        """The one request path: predictions and (``explain``) the local explanation of
        user rows ``data`` (records, lists in training column order, an array or a
        DataFrame). Rows are validated and transformed once, the model predicts once and
        the values reuse its outputs.

        ``get_raw``: values per raw column (``None``: whenever fitted with
        transformations; see :meth:`~scoring.model.layout.OutputLayout.raw_values`);
        ``predict=False`` leaves the predictions empty; ``keep_rows``: the explanation
        holds the explained rows as ``data``; ``outputs``: fill ``ScoredRows.outputs``
        (the explained model output). Raises :class:`~scoring.InputError` for rows the
        schema or the model refuses, and for rows whose outputs or values are not finite.
        """
        self.check_fitted()
        spec = self.spec_
        raw = spec.layout.raw_values(get_raw, self.players_)
        warnings: list[dict] = []
        rows = spec.validate(data, warnings)
        started = time.perf_counter()
        with model_errors():
            X = spec.transform(rows)
            predictions, probabilities = spec.predict(X) if predict else (np.empty(0), None)
        refuse_non_finite("prediction", predictions)
        refuse_non_finite("probability", probabilities)
        scored = ScoredRows(len(rows), predictions, probabilities,
                            predict_seconds=time.perf_counter() - started,
                            warnings=warnings)
        reused = _REUSED_OUTPUTS.get(spec.function.output) if predict else None
        if reused is not None:
            scored.outputs = getattr(scored, reused)
            if scored.outputs.ndim == 1:
                scored.outputs = scored.outputs[:, None]
        if outputs and scored.outputs is None:
            with model_errors():
                scored.outputs = spec.outputs(X)
        if explain:
            started = time.perf_counter()
            with model_errors():
                values = self.shap_values(X, scored.outputs)
            refuse_non_finite("importance", values)
            scored.explanation = spec.layout.explanation(
                values, self.expected_values_, rows if keep_rows else None,
                X if keep_rows else None, raw, self.method, players=self.players_)
            scored.explain_seconds = time.perf_counter() - started
        return scored

    def explain(self, data: Any, get_raw: bool | None = None) -> np.ndarray:
        """Local importance values for ``data`` (one row or a batch; array, DataFrame or
        records), ``(n_rows, n_features)`` or ``(n_classes, n_rows, n_features)``.

        Per raw column when ``get_raw`` (``None``, the default: whenever fitted with
        transformations, engineered values summed onto the raw columns they come from),
        per engineered column with ``get_raw=False``.
        """
        return self.explain_local(data, get_raw=get_raw).local_importance_values

    def explain_local(self, data: Any, get_raw: bool | None = None) -> Explanation:
        """:meth:`explain` wrapped in an :class:`~scoring.Explanation`, with the rows."""
        return self.score(data, get_raw=get_raw, predict=False, keep_rows=True).explanation

    def explain_global(self, evaluation_examples: Any, max_rows: int = 50) -> Explanation:
        """Global importances (mean absolute value) over a uniform sample of at most
        ``max_rows`` rows of ``evaluation_examples``, per raw column when fitted with
        transformations; the local values are not kept, the mean share of each feature in a
        row's attribution is (the reference of the service's attribution monitoring)."""
        self.check_fitted()
        rows, _ = sample_rows(evaluation_examples, max_rows,
                              np.random.default_rng(self.random_state))
        return with_reference(self.score(rows, predict=False).explanation)

    # -- saved state: data only ----------------------------------------------------------
    def to_state(self, arrays: Any) -> dict:
        """Every attribute (parameters and fitted state) as JSON, its arrays put in
        ``arrays`` (see :mod:`scoring.artifacts.state`); ``TypeError`` naming an attribute
        that is not plain data. The models are not in it (:meth:`ModelSpec.models`)."""
        self.check_fitted()
        attributes = {}
        for name, value in vars(self).items():
            if name in self.transient or name in ("spec_", "report_"):
                continue
            attributes[name] = encode(value, arrays, f"{type(self).__name__}.{name}")
        return {"class": type(self).__name__, "method": self.method,
                "spec": self.spec_.to_state(arrays), "attributes": attributes}

    @classmethod
    def from_state(cls, state: dict, arrays: Any, models: dict) -> ScoringExplainer:
        """The explainer :meth:`to_state` saved, explaining the models of the model file."""
        if state.get("class") != cls.__name__:
            raise StateError(f"the state is of a {state.get('class')}, not a {cls.__name__}")
        explainer = cls.__new__(cls)
        # a parameter added since the bundle was saved takes its default: older bundles
        # keep loading and describing themselves (their fitted state does not depend on it)
        for name, parameter in inspect.signature(cls.__init__).parameters.items():
            if parameter.default is not inspect.Parameter.empty:
                setattr(explainer, name, parameter.default)
        for name, value in state["attributes"].items():
            if not name.isidentifier() or name.startswith("__") or name in cls.transient:
                raise StateError(f"the state holds an unexpected attribute {name!r}")
            if name != "report_":  # saved by older versions: the bundle holds the report
                setattr(explainer, name, decode(value, arrays))
        explainer.report_ = None
        explainer.spec_ = ModelSpec.from_state(state["spec"], arrays, models)
        explainer._restore()
        return explainer

    def _restore(self) -> None:
        """Rebuild the :attr:`transient` attributes after loading."""

    def get_params(self) -> dict:
        """The constructor parameters that matter for reports and metadata."""
        fitted = hasattr(self, "spec_")
        return {"model_output": self.spec_.function.output if fitted else self.model_output,
                "random_state": self.random_state,
                "players": self.players_ if fitted else self.players}
