"""Realistic cases: the preprocessing + model pipelines users write, fitted on
scoring.datasets (tests and bench.pipelines run them)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsRegressor
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC

from scoring.datasets import (
    load_diabetes_mixed,
    load_wine_mixed,
    make_churn,
    make_claims,
    make_credit,
    make_triage,
    preprocessor,
)

if TYPE_CHECKING:
    import pandas as pd

Task = Literal["binary", "multiclass", "regression"]


@dataclass
class RealisticCase:
    name: str
    description: str
    task: Task
    model: Pipeline
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series


def _case(name: str, description: str, task: Task, X: pd.DataFrame, y: pd.Series,
          estimator, test_size: float = 0.25) -> RealisticCase:
    stratify = None if task == "regression" else y
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, random_state=0, stratify=stratify)
    model = Pipeline([("prep", preprocessor()), ("model", estimator)])
    with warnings.catch_warnings():
        # SVC(probability=True) is deprecated in scikit-learn 1.9 (users still write it)
        warnings.filterwarnings("ignore", "The `probability` parameter was deprecated",
                                FutureWarning)
        model.fit(X_train, y_train)
    return RealisticCase(name, description, task, model, X_train, X_test, y_train, y_test)


def credit_forest() -> RealisticCase:
    X, y = make_credit(2500)
    return _case("credit_forest", "loan default (binary), RandomForestClassifier(300 trees, "
                 "min_samples_leaf=5), 8 raw columns", "binary", X, y,
                 RandomForestClassifier(n_estimators=300, min_samples_leaf=5, random_state=0))


def credit_logreg() -> RealisticCase:
    X, y = make_credit(2500)
    return _case("credit_logreg", "loan default (binary), LogisticRegression(max_iter=1000), "
                 "8 raw columns", "binary", X, y, LogisticRegression(max_iter=1000))


def triage_hgb() -> RealisticCase:
    X, y = make_triage(2500)
    return _case("triage_hgb", "ER triage urgency (3 classes), HistGradientBoostingClassifier, "
                 "7 raw columns", "multiclass", X, y,
                 HistGradientBoostingClassifier(learning_rate=0.05, max_iter=200,
                                                random_state=0))


def churn_mlp() -> RealisticCase:
    X, y = make_churn(2500)
    return _case("churn_mlp", "telecom churn (binary), MLPClassifier((32, 16), early "
                 "stopping), 7 raw columns", "binary", X, y,
                 MLPClassifier(hidden_layer_sizes=(32, 16), alpha=1e-3, max_iter=500,
                               early_stopping=True, random_state=0))


def wine_svc() -> RealisticCase:
    X, y = load_wine_mixed()
    return _case("wine_svc", "wine cultivar (3 classes, sklearn's shipped 178 rows), "
                 "SVC(probability=True), 8 raw columns", "multiclass", X, y,
                 SVC(probability=True, random_state=0))


def wine_calibrated_svc() -> RealisticCase:
    """The demo's model on the pipeline data: SVC(probability=True) as scikit-learn 1.9 asks."""
    X, y = load_wine_mixed()
    return _case("wine_calibrated_svc", "wine cultivar (3 classes, sklearn's shipped 178 rows), "
                 "CalibratedClassifierCV(SVC(), ensemble=False), 8 raw columns", "multiclass",
                 X, y, CalibratedClassifierCV(SVC(), ensemble=False))


def claims_gbr() -> RealisticCase:
    X, y = make_claims(2500)
    return _case("claims_gbr", "insurance claim cost (regression, skewed), "
                 "GradientBoostingRegressor, 7 raw columns", "regression", X, y,
                 GradientBoostingRegressor(random_state=0))


def diabetes_forest() -> RealisticCase:
    X, y = load_diabetes_mixed()
    return _case("diabetes_forest", "diabetes progression (regression, sklearn's shipped 442 "
                 "rows), RandomForestRegressor(300 trees, min_samples_leaf=3), 10 raw columns",
                 "regression", X, y,
                 RandomForestRegressor(n_estimators=300, min_samples_leaf=3, random_state=0))


def credit_xgboost() -> RealisticCase:
    from xgboost import XGBClassifier  # optional: pip install 'scoring[xgboost]'

    X, y = make_credit(2500)
    return _case("credit_xgboost", "loan default (binary), XGBClassifier(300 trees, depth 4), "
                 "8 raw columns", "binary", X, y,
                 XGBClassifier(n_estimators=300, max_depth=4, learning_rate=0.05,
                               random_state=0, n_jobs=1))


def triage_lightgbm() -> RealisticCase:
    from lightgbm import LGBMClassifier  # optional: pip install 'scoring[lightgbm]'

    X, y = make_triage(2500)
    return _case("triage_lightgbm", "ER triage urgency (3 classes), LGBMClassifier(200 trees, "
                 "15 leaves), 7 raw columns", "multiclass", X, y,
                 LGBMClassifier(n_estimators=200, num_leaves=15, learning_rate=0.05,
                                random_state=0, n_jobs=1, verbose=-1))


def claims_catboost() -> RealisticCase:
    from catboost import CatBoostRegressor  # optional: pip install 'scoring[catboost]'

    X, y = make_claims(2500)
    return _case("claims_catboost", "insurance claim cost (regression, skewed), "
                 "CatBoostRegressor(300 oblivious trees, depth 6), 7 raw columns",
                 "regression", X, y,
                 CatBoostRegressor(iterations=300, depth=6, random_seed=0, thread_count=1,
                                   verbose=0, allow_writing_files=False))


def claims_knn() -> RealisticCase:
    X, y = make_claims(420)
    return _case("claims_knn", "insurance claim cost (regression, 315 training rows), "
                 "KNeighborsRegressor(15 neighbours, distance-weighted), 7 raw columns",
                 "regression", X, y, KNeighborsRegressor(n_neighbors=15, weights="distance"))


def credit_gbc() -> RealisticCase:
    X, y = make_credit(2500)
    return _case("credit_gbc", "loan default (binary), GradientBoostingClassifier, 8 raw "
                 "columns", "binary", X, y, GradientBoostingClassifier(random_state=0))


def triage_hgb_small() -> RealisticCase:
    X, y = make_triage(400)
    return _case("triage_hgb_small", "ER triage urgency (3 classes, 300 training rows), "
                 "HistGradientBoostingClassifier, 7 raw columns", "multiclass", X, y,
                 HistGradientBoostingClassifier(max_iter=100, random_state=0))


def churn_mlp_small() -> RealisticCase:
    X, y = make_churn(400)
    return _case("churn_mlp_small", "telecom churn (binary, 300 training rows), "
                 "MLPClassifier((32, 16)), 7 raw columns", "binary", X, y,
                 MLPClassifier(hidden_layer_sizes=(32, 16), alpha=1e-3, max_iter=2000,
                               random_state=0))


def credit_svc_small() -> RealisticCase:
    X, y = make_credit(400)
    return _case("credit_svc_small", "loan default (binary, 300 training rows), "
                 "SVC(probability=True), 8 raw columns", "binary", X, y,
                 SVC(probability=True, random_state=0))


CASES: dict[str, Callable[[], RealisticCase]] = {
    "credit_forest": credit_forest,
    "credit_logreg": credit_logreg,
    "triage_hgb": triage_hgb,
    "churn_mlp": churn_mlp,
    "wine_svc": wine_svc,
    "wine_calibrated_svc": wine_calibrated_svc,
    "claims_gbr": claims_gbr,
    "diabetes_forest": diabetes_forest,
    "credit_xgboost": credit_xgboost,
    "triage_lightgbm": triage_lightgbm,
    "claims_catboost": claims_catboost,
    "claims_knn": claims_knn,
    "credit_gbc": credit_gbc,
    "triage_hgb_small": triage_hgb_small,
}

# black boxes on small training sets: where distill's fallback, the centroid walks, is
# measured against the anchor (bench.fallback)
SMALL_BLACK_BOX: dict[str, Callable[[], RealisticCase]] = {
    "claims_knn": claims_knn,
    "churn_mlp_small": churn_mlp_small,
    "credit_svc_small": credit_svc_small,
    "triage_hgb_small": triage_hgb_small,
}
