"""The example rows and explainers batch explanations run on (tests/test_remote.py,
``python -m bench.remote``): one cheap per row, one compute-bound."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC

from scoring import KernelScoringExplainer, LinearScoringExplainer


def people(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """``n`` rows of age, income (5 % missing) and city (a string, a quarter missing), and
    a label that depends on age and city."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"age": rng.normal(40, 10, n), "income": rng.normal(50, 15, n),
                          "city": rng.choice(np.array(["paris", "lyon", "nice", None],
                                                      dtype=object), n)})
    frame.loc[rng.random(n) < 0.05, "income"] = np.nan
    y = (frame["age"] + 10 * (frame["city"] == "paris") + rng.normal(0, 5, n)) > 45
    return frame, y.astype(int).to_numpy()


def example_explainers(n_people: int = 400) -> tuple[pd.DataFrame, dict[str, tuple]]:
    """The people rows and two ``(model, fitted scoring explainer)`` pairs: ``people``
    (logistic regression behind a ColumnTransformer with imputers and a one-hot string
    column; linear explainer, raw importances) and ``svc`` (breast-cancer SVC, Kernel)."""
    frame, y = people(n_people, 0)
    columns = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["age", "income"]),
        ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                              OneHotEncoder(handle_unknown="ignore")), ["city"])])
    columns.fit(frame)
    lr = LogisticRegression().fit(columns.transform(frame), y)
    data = load_breast_cancer()
    svc = SVC(probability=True, random_state=0).fit(data.data, data.target)
    return frame, {
        "people": (lr, LinearScoringExplainer().fit(lr, frame, transformations=columns)),
        "svc": (svc, KernelScoringExplainer(nsamples=64, n_background=5).fit(
            svc, data.data, features=list(data.feature_names),
            classes=data.target_names.tolist())),
    }
