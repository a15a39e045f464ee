"""TabularExplainer: picks shap's Tree, Linear or Kernel explainer for a model, as the
Azure SDK does."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from scoring.core.explanation import Explanation
from scoring.explainers.base import ModelExplainer, as_3d, global_from_local
from scoring.model.spec import final_estimator
from scoring.model.trees import not_additive
from scoring.scoring_explainers.registry import supporting_methods
from scoring.shapley.tree_paths import PathEngine

logger = logging.getLogger(__name__)

KINDS = ("auto", "tree", "linear", "kernel")
_N_TREE_BACKGROUND = 100
# the path engine's request cost does not grow with its background
_N_PATHS_BACKGROUND = 1000


class TabularExplainer(ModelExplainer):
    """Explain a model with the fitting shap explainer.

    - ``"tree"``: for tree models, exact interventional values; probabilities for
      classifiers. scikit-learn trees, forests and boosting whose explained output is a
      sum over their trees go through the path engine
      (:class:`~scoring.shapley.tree_paths.PathEngine`, on up to 1000 training rows);
      other tree models through shap's ``TreeExplainer`` (on up to 100 training rows), or
      Kernel when shap cannot read them (e.g. multi-class gradient boosting).
    - ``"linear"``: shap's ``LinearExplainer`` (interventional, mean of all training rows)
      for models with ``coef_``; it explains ``predict`` for regressors and
      ``decision_function`` (log-odds) for classifiers.
    - ``"kernel"``: shap's ``KernelExplainer`` otherwise, on ``shap.kmeans`` of 10 training
      rows (a random sample of rows for DataFrames with categorical columns, where
      centroids do not exist). ``l1_reg=False``: every feature gets a value (shap>=0.47
      would otherwise keep only 10).

    A binary classifier explained on ``decision_function`` (one log-odds output) keeps both
    classes: ``-values`` for the first, ``values`` for the second.

    The choice is in ``explainer_kind`` and why in ``selection_reason_`` (also logged).

    With ``transformations``, ``model`` is the final estimator, and initialization examples
    and explained rows are raw rows; explanations are per raw column (the sum of the
    engineered columns made from it) unless ``get_raw=False``.

    Parameters
    ----------
    model, initialization_examples, features, classes, transformations, model_output :
        see :class:`~scoring.model_explainer.ModelExplainer`.
    explainer_kind : ``"auto"`` or force ``"tree"``, ``"linear"``, ``"kernel"``.
    n_background : Kernel background rows (default 10, as the Azure SDK).
    nsamples : Kernel coalitions per row; ``"auto"`` is shap's ``2 * M + 2048``.
    l1_reg : passed to shap's ``KernelExplainer.shap_values`` (default ``False``).
    random_state : seed for background samples and Kernel sampling.

    Attributes
    ----------
    explainer_kind : ``"tree"``, ``"linear"`` or ``"kernel"``.
    selection_reason_ : the model's class, the kind picked and why.
    shap_explainer_ : the shap explainer doing the work (or the path engine, behind the
        same ``expected_value`` and ``shap_values``).
    background_, background_weights_ : the rows the values are relative to (Kernel: the
        kmeans centroids or sampled rows; Tree: up to 1000 or 100 training rows; Linear:
        the mean training row) and their weights.
    """

    def __init__(self, model: Any, initialization_examples: Any, features: Any = None,
                 classes: Any = None, transformations: Any = None,
                 model_output: str | None = None, *, explainer_kind: str = "auto",
                 n_background: int = 10, nsamples: int | str = "auto",
                 l1_reg: Any = False, random_state: int | None = 0) -> None:
        if explainer_kind not in KINDS:
            raise ValueError(f"explainer_kind must be one of {KINDS}, got {explainer_kind!r}")
        if not isinstance(n_background, (int, np.integer)) or n_background < 1:
            raise ValueError(f"n_background must be a positive integer, got {n_background!r}")
        _check_nsamples(nsamples)
        self.n_background = n_background
        self.nsamples = nsamples
        self.l1_reg = l1_reg
        self.random_state = random_state
        # a pipeline split at its ColumnTransformer is explained through its estimator
        kind, reason = _choose(final_estimator(model, initialization_examples), explainer_kind,
                               model_output)
        if kind == "linear" and model_output is None:
            model_output = "decision_function" if hasattr(model, "classes_") else "predict"
        super().__init__(model, initialization_examples, features, classes, transformations,
                         model_output)
        if kind == "tree":
            try:
                reason += self._build_tree()
            except Exception as exc:  # shap raises bare Exceptions for unsupported trees
                kind, reason = "kernel", f"shap's TreeExplainer cannot read it ({exc})"
        if kind == "linear":
            self._build_linear()
        elif kind == "kernel":
            self._build_kernel()
        self.explainer_kind = kind
        self.selection_reason_ = f"{type(model).__name__}: {kind} ({reason})"
        logger.info("TabularExplainer picked shap's %sExplainer for %s",
                    kind.capitalize(), self.selection_reason_)

    # -- the three shap explainers -------------------------------------------------------
    def _build_tree(self) -> str:
        """The path engine where it reads the model, else shap's ``TreeExplainer``; says
        which."""
        import shap

        model, output = self.spec_.model, self.spec_.function.output
        note = not_additive(model, output)
        if note is None:
            rows = self._tree_background(_N_PATHS_BACKGROUND)
            try:
                engine = PathEngine.build(model, output, np.arange(rows.shape[1]), rows)
            except TypeError as exc:  # paths too deep for per-column tables
                note = str(exc)
            else:
                self.shap_explainer_ = _PathEngineExplainer(
                    engine, self.spec_.function(rows).mean(axis=0))
                return ": exact path engine"
        rows = self._tree_background(_N_TREE_BACKGROUND)
        self.shap_explainer_ = shap.TreeExplainer(
            model, data=rows, feature_perturbation="interventional",
            model_output="probability" if output == "predict_proba" else "raw")
        return f": shap's TreeExplainer ({note})"

    def _tree_background(self, n_rows: int) -> np.ndarray:
        rows = np.asarray(self.engineered_rows_, dtype=float)
        if len(rows) > n_rows:
            rng = np.random.default_rng(self.random_state)
            rows = rows[np.sort(rng.choice(len(rows), n_rows, replace=False))]
        self.background_ = rows
        self.background_weights_ = np.full(len(rows), 1.0 / len(rows))
        return rows

    def _build_linear(self) -> None:
        import shap

        rows = np.asarray(self.engineered_rows_, dtype=float)
        # all rows: shap's default masker would keep a sample of 100, and the mean of the
        # whole training set is what LinearScoringExplainer and the Azure SDK use
        masker = shap.maskers.Independent(rows, max_samples=len(rows))
        self.shap_explainer_ = shap.LinearExplainer(self.spec_.model, masker)
        self.background_ = rows.mean(axis=0, keepdims=True)
        self.background_weights_ = np.ones(1)

    def _build_kernel(self) -> None:
        import shap

        rows = self.engineered_rows_
        self._frame_columns = None
        if isinstance(rows, pd.DataFrame):
            # the model takes DataFrames (e.g. a whole Pipeline): shap works on arrays, so
            # hand it a function that rebuilds the DataFrame with the columns and dtypes of
            # validated rows (numbers as float64, categories as objects)
            self._frame_columns = list(rows.columns)
            self._frame_dtypes = {c: rows[c].dtype for c in rows.columns}
            numeric = self.spec_.schema.all_numeric
            rows = rows.to_numpy(dtype=float if numeric else object)
        else:
            numeric = True
        if len(rows) <= self.n_background:
            background = rows
        elif numeric:
            background = shap.kmeans(np.asarray(rows, dtype=float), int(self.n_background))
        else:
            rng = np.random.default_rng(self.random_state)
            background = rows[np.sort(rng.choice(len(rows), self.n_background,
                                                 replace=False))]
        self.shap_explainer_ = shap.KernelExplainer(self._kernel_function, background)
        self.background_ = self.shap_explainer_.data.data
        weights = np.asarray(self.shap_explainer_.data.weights, dtype=float)
        self.background_weights_ = weights / weights.sum()

    def _kernel_function(self, array: np.ndarray) -> np.ndarray:
        if self._frame_columns is None:
            return self.spec_.function(array)
        frame = pd.DataFrame(array, columns=self._frame_columns).astype(self._frame_dtypes)
        return self.spec_.function(frame)

    # -- explanations ------------------------------------------------------------------
    @property
    def expected_values(self) -> float | np.ndarray:
        """The explained output averaged over the background: float or ``(n_classes,)``."""
        return self.spec_.layout.expected(self.shap_explainer_.expected_value)

    def _values(self, engineered: Any, nsamples: int | str | None) -> np.ndarray:
        n, m = len(engineered), len(self.spec_.engineered_features)
        if self.explainer_kind == "kernel":
            nsamples = self.nsamples if nsamples is None else _check_nsamples(nsamples)
            if isinstance(engineered, pd.DataFrame):
                engineered = engineered.to_numpy(
                    dtype=float if self.spec_.schema.all_numeric else object)
            state = np.random.get_state()  # shap's Kernel sampling uses the global RNG
            if self.random_state is not None:
                np.random.seed(self.random_state)
            try:
                values = self.shap_explainer_.shap_values(
                    engineered, nsamples=nsamples, l1_reg=self.l1_reg, silent=True)
            finally:
                if self.random_state is not None:
                    np.random.set_state(state)
        elif self.explainer_kind == "tree":
            values = self.shap_explainer_.shap_values(np.asarray(engineered, dtype=float),
                                                      check_additivity=False)
        else:
            values = self.shap_explainer_.shap_values(np.asarray(engineered, dtype=float))
        return as_3d(values, n, m)

    def explain_local(self, evaluation_examples: Any, get_raw: bool = True,
                      nsamples: int | str | None = None) -> Explanation:
        """Local importance values of ``evaluation_examples``.

        ``(n_rows, n_features)`` for regression, ``(n_classes, n_rows, n_features)`` for
        classification; per raw column when ``get_raw`` and transformations were given,
        per engineered column otherwise. ``nsamples`` overrides the Kernel budget.
        """
        return self._explanation(lambda X: self._values(X, nsamples),
                                 self.shap_explainer_.expected_value, evaluation_examples,
                                 get_raw, self.explainer_kind,
                                 extra={"explainer": self.selection_reason_})

    def explain_global(self, evaluation_examples: Any, get_raw: bool = True,
                       nsamples: int | str | None = None,
                       include_local: bool = True) -> Explanation:
        """Global importances (mean absolute local value) over ``evaluation_examples``;
        the local values are kept unless ``include_local=False``."""
        local = self.explain_local(evaluation_examples, get_raw=get_raw, nsamples=nsamples)
        return global_from_local(local, include_local)


class _PathEngineExplainer:
    """The path engine behind the two members of shap's ``TreeExplainer`` used here."""

    def __init__(self, engine: PathEngine, expected_value: np.ndarray) -> None:
        self.engine = engine
        self.expected_value = expected_value

    def shap_values(self, X: np.ndarray, check_additivity: bool = False) -> np.ndarray:
        return self.engine.values(np.asarray(X, dtype=float))


def _choose(model: Any, kind: str, model_output: str | None) -> tuple[str, str]:
    """shap's explainer for ``model``: the kinds whose scoring explainer supports it."""
    if kind != "auto":
        return kind, "explainer_kind given"
    supported = supporting_methods(model, model_output)
    if "tree" in supported:
        return "tree", "a tree model"
    if "linear" in supported:
        return "linear", "a linear model (coef_)"
    return "kernel", "a model without a specific explainer: model-agnostic Kernel SHAP"


def _check_nsamples(nsamples: Any) -> Any:
    if nsamples == "auto":
        return nsamples
    if isinstance(nsamples, bool) or not isinstance(nsamples, (int, np.integer)) \
            or nsamples < 2:
        raise ValueError(f"nsamples must be 'auto' or an integer >= 2, got {nsamples!r}")
    return int(nsamples)
