"""Interpretable surrogate models for MimicExplainer (the Azure SDK's "glassbox" models).

Each surrogate regresses the model's outputs ``Y (n_rows, n_outputs)`` (probabilities for
classifiers, one output per class) and explains its own predictions additively:
``shap_values(X)`` is ``(n_rows, n_features, n_outputs)`` and
``shap_values(X).sum(1) + expected_values_ == predict(X)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import LinearRegression, SGDRegressor
from sklearn.tree import DecisionTreeRegressor


class ExplainableModel:
    """Base class: ``fit(X, Y)``, ``predict(X) -> (n, O)``, ``shap_values(X) -> (n, M, O)``,
    ``expected_values_ (O,)``."""

    method = "surrogate"

    def __init__(self, random_state: int | None = 0, **params: Any) -> None:
        self.random_state = random_state
        self.params = params

    def fit(self, X: np.ndarray, Y: np.ndarray) -> ExplainableModel:
        raise NotImplementedError

    def predict(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def shap_values(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class _LinearSurrogate(ExplainableModel):
    """``phi_j = w_j * (x_j - mean_j)`` with ``mean`` over the training rows."""

    def _set_linear(self, X: np.ndarray, weights: np.ndarray, intercept: np.ndarray) -> None:
        self.coef_ = np.atleast_2d(weights)  # (O, M)
        self.intercept_ = np.asarray(intercept, dtype=float).reshape(-1)
        self.mean_ = X.mean(axis=0)
        self.expected_values_ = self.intercept_ + self.coef_ @ self.mean_

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=float) @ self.coef_.T + self.intercept_

    def shap_values(self, X: np.ndarray) -> np.ndarray:
        centred = np.asarray(X, dtype=float) - self.mean_
        return centred[:, :, None] * self.coef_.T[None, :, :]


class LinearExplainableModel(_LinearSurrogate):
    """Least-squares linear regression of the model's outputs (``params`` go to
    ``sklearn.linear_model.LinearRegression``)."""

    method = "mimic_linear"

    def fit(self, X: np.ndarray, Y: np.ndarray) -> LinearExplainableModel:
        model = LinearRegression(**self.params).fit(X, Y)
        self._set_linear(X, model.coef_, model.intercept_)
        return self


class SGDExplainableModel(_LinearSurrogate):
    """Linear regression by stochastic gradient descent on standardised features, one
    ``SGDRegressor`` per output (``params`` go to it)."""

    method = "mimic_sgd"

    def fit(self, X: np.ndarray, Y: np.ndarray) -> SGDExplainableModel:
        mean, scale = X.mean(axis=0), X.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        Z = (X - mean) / scale
        weights, intercepts = [], []
        for o in range(Y.shape[1]):
            params = {"max_iter": 2000, "tol": 1e-5, "random_state": self.random_state,
                      **self.params}
            sgd = SGDRegressor(**params).fit(Z, Y[:, o])
            weights.append(sgd.coef_ / scale)
            intercepts.append(sgd.intercept_[0] - (sgd.coef_ / scale) @ mean)
        self._set_linear(X, np.array(weights), np.array(intercepts))
        return self


class _TreeSurrogate(ExplainableModel):
    """Tree models explained by shap's ``TreeExplainer`` (path-dependent: exact for the
    tree's own training distribution, no background needed)."""

    def _explainers(self) -> list:
        raise NotImplementedError

    def shap_values(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        parts = [np.asarray(e.shap_values(X, check_additivity=False), dtype=float).reshape(
            len(X), X.shape[1], -1) for e in self._explainers()]
        return np.concatenate(parts, axis=-1)


class DecisionTreeExplainableModel(_TreeSurrogate):
    """One multi-output ``DecisionTreeRegressor`` (default ``max_depth=8``; ``params`` go
    to it)."""

    method = "mimic_tree"

    def fit(self, X: np.ndarray, Y: np.ndarray) -> DecisionTreeExplainableModel:
        import shap

        params = {"max_depth": 8, "random_state": self.random_state, **self.params}
        self.tree_ = DecisionTreeRegressor(**params).fit(X, Y)
        self.explainer_ = shap.TreeExplainer(self.tree_)
        self.expected_values_ = np.asarray(self.explainer_.expected_value,
                                           dtype=float).reshape(-1)
        return self

    def _explainers(self) -> list:
        return [self.explainer_]

    def predict(self, X: np.ndarray) -> np.ndarray:
        out = self.tree_.predict(np.asarray(X, dtype=float))
        return out.reshape(len(out), -1)


class LGBMExplainableModel(_TreeSurrogate):
    """Gradient-boosted trees (LightGBM), one ``LGBMRegressor`` per output (default 100
    trees, ``n_jobs=1``; ``params`` go to it). Needs the optional extra:
    ``pip install 'scoring[lightgbm]'``."""

    method = "mimic_lgbm"

    def __init__(self, random_state: int | None = 0, **params: Any) -> None:
        try:
            import lightgbm  # noqa: F401
        except ImportError:
            raise ImportError("LGBMExplainableModel needs LightGBM, an optional extra: "
                              "pip install 'scoring[lightgbm]'") from None
        super().__init__(random_state, **params)

    def fit(self, X: np.ndarray, Y: np.ndarray) -> LGBMExplainableModel:
        import shap
        from lightgbm import LGBMRegressor

        params = {"n_estimators": 100, "n_jobs": 1, "verbose": -1,
                  "random_state": self.random_state, **self.params}
        self.models_ = [LGBMRegressor(**params).fit(X, Y[:, o]) for o in range(Y.shape[1])]
        self.explainers_ = [shap.TreeExplainer(m) for m in self.models_]
        self.expected_values_ = np.array([float(np.asarray(e.expected_value).reshape(-1)[0])
                                          for e in self.explainers_])
        return self

    def _explainers(self) -> list:
        return self.explainers_

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        return np.column_stack([m.predict(X) for m in self.models_])

