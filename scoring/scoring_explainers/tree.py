"""TreeSHAP scoring explainer for tree ensembles (exact, polynomial time)."""

from __future__ import annotations

from typing import Any

import numpy as np

from scoring.model.trees import not_additive, output_dtype
from scoring.scoring_explainers.base import ScoringExplainer
from scoring.shapley.additivity import project_additive
from scoring.shapley.background import sample_background
from scoring.shapley.tree_paths import PathEngine

# training rows whose values are checked against the model outputs at fit
_N_CHECK_ROWS = 20
# shap's TreeSHAP accumulates in float32: its values miss the model's float64 outputs by up
# to ~1e-4 on forests. Gaps below this share of the output scale are rounding, projected
# away on every request; larger ones mean shap misreads the model, which is refused
ADDITIVITY_TOLERANCE = 1e-3


def _is_tree_model(model: Any) -> bool:
    """Tree ensembles and trees that shap's TreeExplainer supports."""
    name = type(model).__name__
    return hasattr(model, "tree_") or hasattr(model, "estimators_") and any(
        key in name for key in ("Forest", "Trees", "GradientBoosting")) or name.startswith(
        ("HistGradientBoosting", "LGBM", "XGB", "CatBoost"))


class TreeScoringExplainer(ScoringExplainer):
    """Exact interventional Shapley values of tree models (TreeSHAP) on a background sample.

    Two engines, chosen at fit (``engine_``):

    - ``"paths"``: scikit-learn trees, forests, extra trees, gradient boosting and
      histogram gradient boosting, XGBoost, LightGBM and CatBoost models whose explained
      output is a sum over their trees (probabilities of forests, ``predict`` of
      regressors with an identity link, ``decision_function`` of boosting classifiers:
      the raw margin) are read root-to-leaf path by path
      (:class:`~scoring.shapley.tree_paths.PathEngine`). The values are exact for the
      raw columns themselves when the model has transformations (each raw column's
      engineered columns are one player), on up to ``n_background`` training rows, and
      cost a table lookup per leaf on the request path. Models whose paths test too many
      columns for those tables are refused.
    - ``"shap"``: other tree models shap's ``TreeExplainer`` reads (probabilities of
      boosting classifiers, which the amortized explainer handles with the path engine's
      exact margins as its base), per engineered column, on
      ``n_background`` rows; refused when its values miss the model outputs by more than
      ``ADDITIVITY_TOLERANCE`` of the output scale, smaller gaps projected away.

    Parameters
    ----------
    n_background : training rows sampled uniformly as background (default: 1000 for the
        paths engine, 100 for shap's, whose cost is linear in it).
    players : as for every scoring explainer (raw columns with the paths engine).
    """

    method = "tree"
    transient = ("tree_explainer_", "path_engine_")

    def __init__(self, explainer: Any = None, initialization_examples: Any = None, *,
                 n_background: int | None = None, model_output: str | None = None,
                 random_state: int | None = 0, players: str = "auto") -> None:
        self.n_background = n_background
        super().__init__(explainer, initialization_examples, model_output=model_output,
                         random_state=random_state, players=players)

    @classmethod
    def unsupported(cls, model: Any, output: str) -> str | None:
        if not _is_tree_model(model):
            return "it is not a tree model that shap's TreeExplainer reads"
        if output == "decision_function":
            return not_additive(model, output)
        return None

    @property
    def plays_raw_columns(self) -> bool:  # type: ignore[override]
        return getattr(self, "engine_", None) == "paths"

    def fit_spec(self, spec: Any, X: Any) -> TreeScoringExplainer:
        self.engine_ = "paths" if not_additive(spec.model, spec.function.output) is None \
            else "shap"
        return super().fit_spec(spec, X)

    def _fit(self, X: Any) -> None:
        if self.n_background is not None and (
                not isinstance(self.n_background, (int, np.integer)) or self.n_background < 1):
            raise ValueError(f"n_background must be a positive integer, got "
                             f"{self.n_background!r}")
        X = np.asarray(X, dtype=float)
        rng = np.random.default_rng(self.random_state)
        default = 1000 if self.engine_ == "paths" else 100
        self.background_, _ = sample_background(X, self.n_background or default, rng)
        if self.engine_ == "paths":
            self._fit_paths(X)
        else:
            self._fit_shap(X)

    def _fit_paths(self, X: np.ndarray) -> None:
        self._restore()
        check = X[:_N_CHECK_ROWS]
        gap = self.spec_.function(check) - self.path_engine_.paths.output(check)
        # the trees add to a constant (boosting's initial prediction), the same for every row,
        # up to the rounding of the model's own sums (XGBoost adds in float32)
        scale = max(1.0, float(np.abs(gap).max()))
        rounding = np.finfo(output_dtype(self.spec_.model)).eps * \
            self.path_engine_.paths.n_trees
        spread = float(np.ptp(gap, axis=0).max())
        if spread > max(1e-9, rounding) * scale:
            raise TypeError(f"TreeScoringExplainer cannot read "
                            f"{type(self.spec_.model).__name__}'s trees: their leaves miss "
                            f"its {self.spec_.function.output} by up to {spread:.2g} beyond a "
                            "constant on training rows")
        self.expected_values_ = self.spec_.function(self.background_).mean(axis=0)

    def _fit_shap(self, X: np.ndarray) -> None:
        output = "probability" if self.spec_.function.output == "predict_proba" else "raw"
        try:
            self._restore()
        except Exception as exc:  # shap raises bare Exception for unsupported models
            raise TypeError(f"TreeScoringExplainer cannot explain "
                            f"{type(self.spec_.model).__name__}: {exc}") from None
        expected = np.asarray(self.tree_explainer_.expected_value, dtype=float).reshape(-1)
        n_outputs = self.spec_.function(self.background_[:1]).shape[1]
        # binary boosting: shap explains the probability of the second class only; the
        # first class's probability is one minus it, so its values are the negatives
        self.binary_second_class_ = bool(output == "probability" and n_outputs == 2
                                         and expected.size == 1)
        if self.binary_second_class_:
            expected = np.array([1.0 - expected[0], expected[0]])
        self.expected_values_ = expected
        self._check_additivity(X[:_N_CHECK_ROWS])

    def _restore(self) -> None:
        """The engine's structures from the model and the background (rebuilt when
        loaded)."""
        if not hasattr(self, "engine_"):  # saved before the path engine: shap's
            self.engine_ = "shap"
        if self.engine_ == "paths":
            groups = self.groups_ if self.groups_ is not None \
                else np.arange(self.background_.shape[1])
            try:
                self.path_engine_ = PathEngine.build(self.spec_.model,
                                                      self.spec_.function.output, groups,
                                                      self.background_)
            except TypeError as exc:
                raise TypeError(f"TreeScoringExplainer: {exc}; use method='amortized' or "
                                "'permutation', or limit max_depth") from None
            return
        import shap

        output = "probability" if self.spec_.function.output == "predict_proba" else "raw"
        self.tree_explainer_ = shap.TreeExplainer(
            self.spec_.model, data=self.background_,
            feature_perturbation="interventional", model_output=output)

    def _check_additivity(self, X: np.ndarray) -> None:
        """Refuse a model whose TreeSHAP values do not add up to its own outputs (shap
        misreads some models' probabilities, e.g. HistGradientBoostingClassifier)."""
        name = type(self.spec_.model).__name__
        try:
            values = self._shap_values(X)
        except Exception as exc:  # shap raises bare Exception for unsupported models
            raise TypeError(f"TreeScoringExplainer cannot explain {name}: {exc}") from None
        outputs = self.spec_.function(X)
        if values.shape[-1] != outputs.shape[1]:
            raise TypeError(f"TreeScoringExplainer cannot explain {name}: shap's TreeExplainer "
                            f"gives {values.shape[-1]} output(s) where "
                            f"{self.spec_.function.output} gives {outputs.shape[1]}; use "
                            "method='permutation', 'kernel' or 'amortized'")
        gap = float(np.max(np.abs(values.sum(axis=1) + self.expected_values_ - outputs)))
        scale = max(1.0, float(np.abs(outputs).max()))
        if not gap <= ADDITIVITY_TOLERANCE * scale:
            raise TypeError(f"TreeScoringExplainer cannot explain {name}'s "
                            f"{self.spec_.function.output}: shap's TreeExplainer values miss "
                            f"the model outputs by up to {gap:.2g} on training rows (more "
                            f"than {ADDITIVITY_TOLERANCE:g} of the output scale); use "
                            "method='permutation', 'kernel' or 'amortized'")
        self.additivity_gap_ = gap

    def _shap_values(self, X: Any, outputs: np.ndarray | None = None) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        if self.engine_ == "paths":
            return self.path_engine_.values(X)
        values = np.asarray(self.tree_explainer_.shap_values(X, check_additivity=False),
                            dtype=float)
        if values.ndim == 2:
            values = values[:, :, None]
        if self.binary_second_class_:
            values = np.concatenate([-values, values], axis=-1)
        if hasattr(self, "additivity_gap_"):  # fitted: project shap's rounding away
            outputs = self.spec_.function(X) if outputs is None else outputs
            values = project_additive(values, outputs - self.expected_values_)
        return values

    def get_params(self) -> dict:
        params = {**super().get_params(), "n_background": self.n_background}
        if hasattr(self, "engine_"):
            params.update(engine=self.engine_, background_rows=len(self.background_))
        if hasattr(self, "additivity_gap_"):
            params["shap_additivity_gap"] = self.additivity_gap_
        return params

