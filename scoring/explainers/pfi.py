"""PFIExplainer: permutation feature importance, a global-only explanation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import is_classifier
from sklearn.inspection import permutation_importance
from sklearn.metrics import get_scorer, get_scorer_names, make_scorer

from scoring.core.explanation import Explanation
from scoring.core.plain import plain
from scoring.explainers.progress import check_show_progress, progress_bar
from scoring.model.function import ModelFunction, check_model
from scoring.model.schema import InputError, InputSchema
from scoring.model.spec import accepts_nan
from scoring.model.transformations import RawFeatureMap


class PFIExplainer:
    """How much a metric drops when one feature's values are shuffled
    (``sklearn.inspection.permutation_importance``). Global only: there is no local
    explanation.

    Parameters
    ----------
    model : a fitted model (the final estimator when ``transformations`` is given).
    metric : ``None`` (accuracy for classifiers, R² for regressors), a scikit-learn scorer
        name (``"roc_auc"``, ``"neg_mean_absolute_error"``...) or a function
        ``metric(y_true, y_pred)`` where higher is better.
    features : column names of the explained rows (optional).
    classes : class names, kept on the explanation (optional).
    transformations : fitted ``ColumnTransformer`` or list of ``(columns, transformer)``;
        raw columns are then shuffled and the model sees the transformed rows.
    n_repeats : shuffles per feature; importance is the mean drop.
    random_state : seed of the shuffles.
    show_progress : a progress bar over the metric's evaluations on stderr: ``None`` for
        calls over a few seconds unless ``TQDM_DISABLE`` is set, ``True`` always, ``False``
        never.
    """

    method = "pfi"

    def __init__(self, model: Any, metric: str | Callable | None = None, features: Any = None,
                 classes: Any = None, transformations: Any = None, n_repeats: int = 5,
                 random_state: int | None = 0, show_progress: bool | None = None) -> None:
        check_model(model)
        if isinstance(n_repeats, bool) or not isinstance(n_repeats, (int, np.integer)) \
                or n_repeats < 1:
            raise ValueError(f"n_repeats must be a positive integer, got {n_repeats!r}")
        self.model = model
        self.metric = metric
        self.features = None if features is None else [str(f) for f in features]
        self.classes = None if classes is None else list(classes)
        self.transformations = transformations
        self.n_repeats = int(n_repeats)
        self.random_state = random_state
        self.show_progress = check_show_progress(show_progress)
        self.scorer_ = _scorer(model, metric)

    def explain_global(self, evaluation_examples: Any, true_labels: Any = None) -> Explanation:
        """Permutation importances on ``evaluation_examples`` scored against
        ``true_labels``; ``extra`` holds the metric, the baseline score and the std."""
        if true_labels is None:
            raise ValueError("PFIExplainer.explain_global needs true_labels: the metric "
                             "compares predictions with them, e.g. "
                             "explain_global(x_test, true_labels=y_test)")
        rows, transform, schema = self._validate(evaluation_examples)
        y = np.asarray(true_labels)
        if y.ndim != 1 or len(y) != len(rows):
            raise ValueError(f"true_labels has shape {y.shape}; expected one label per row "
                             f"({len(rows)},)")
        scorer = self.scorer_
        # permutation_importance scores the rows once, then each shuffle of each column
        evaluations = 1 + len(schema.columns) * self.n_repeats
        with progress_bar(evaluations, "PFIExplainer", self.show_progress,
                          unit="score") as bar:
            def score(_estimator: Any, X: Any, y_true: Any) -> float:
                bar.update(1)
                return scorer(self.model, transform(X), y_true)

            result = permutation_importance(self.model, rows, y, scoring=score,
                                            n_repeats=self.n_repeats,
                                            random_state=self.random_state)
        baseline = scorer(self.model, transform(rows), y)
        return Explanation(
            schema.columns, global_importance_values=result.importances_mean,
            classes=self.classes if self.classes is not None else plain(getattr(
                self.model, "classes_", None)),
            method=self.method, raw=True,
            extra={"metric": _metric_name(self.metric, self.model), "baseline_score":
                   float(baseline), "importances_std": result.importances_std.tolist(),
                   "n_repeats": self.n_repeats, "n_rows": len(rows)})

    def _validate(self, data: Any) -> tuple[Any, Callable, InputSchema]:
        """Validated rows, the function turning them into the model's input, the schema."""
        schema = InputSchema.from_data(
            data, None if self.transformations is not None else self.features)
        schema.allow_nan = True
        rows = schema.validate(data)
        transform = (lambda r: r) if self.transformations is None else \
            RawFeatureMap(self.transformations, rows).transform
        if self.transformations is None:
            _check_model_columns(self.model, schema.columns, schema.from_dataframe)
        schema.allow_nan = accepts_nan(ModelFunction(self.model), transform, schema, rows)
        if not schema.allow_nan:
            schema.validate(rows)  # InputError naming the row with a missing value
        return rows, transform, schema

    def explain_local(self, *args: Any, **kwargs: Any) -> Explanation:
        """Not available: permutation importance is a property of a data set, not a row."""
        raise NotImplementedError(
            "PFIExplainer does not support local explanations (permutation importance is "
            "global only); use TabularExplainer or MimicExplainer for explain_local")


def _check_model_columns(model: Any, columns: list[str], named: bool) -> None:
    expected = getattr(model, "n_features_in_", None)
    if expected is not None and len(columns) != expected:
        raise InputError(f"evaluation_examples has {len(columns)} columns; the model takes "
                         f"{expected}", reason="wrong_column_count")
    names = getattr(model, "feature_names_in_", None)
    if named and names is not None:
        unknown = [c for c in columns if c not in set(map(str, names))]
        if unknown:
            raise InputError(f"unknown column(s) {unknown}; the model takes {list(names)}",
                             field=unknown[0], reason="unknown_column")


def _metric_name(metric: Any, model: Any) -> str:
    if metric is None:
        return "accuracy" if is_classifier(model) else "r2"
    return metric if isinstance(metric, str) else getattr(metric, "__name__", repr(metric))


def _scorer(model: Any, metric: Any) -> Callable:
    if metric is None:
        return get_scorer(_metric_name(None, model))
    if isinstance(metric, str):
        if metric not in get_scorer_names():
            raise ValueError(f"metric {metric!r} is not a scikit-learn scorer name; use one of "
                             "sklearn.metrics.get_scorer_names() or a function "
                             "metric(y_true, y_pred)")
        return get_scorer(metric)
    if callable(metric):
        return make_scorer(metric)
    raise TypeError(f"metric must be None, a scorer name or a function, got {metric!r}")

