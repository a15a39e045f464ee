"""Realistic tabular example data with mixed types and missing values, built offline, and
the preprocessing users put in front of a model for such data."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.datasets import load_diabetes, load_wine
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

# Every function returns ``(X, y)`` with the dtypes ``pd.read_csv`` gives a user: numbers
# as int64 (no missing values) or float64 (NaN for missing), strings as pandas' default
# string dtype (``str`` on pandas 3) with NaN for missing. ``pd.read_csv(io.StringIO(
# X.to_csv(index=False)))`` gives back the same dtypes and values. Floats are rounded to
# the decimals a CSV export would carry, so the round trip is exact.


def _rng(random_state: int | None) -> np.random.Generator:
    return np.random.default_rng(random_state)


def _mask(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    return rng.random(n) < rate


def _strings(values: np.ndarray, missing: np.ndarray | None = None) -> list[str | None]:
    """Python list of str with None where ``missing``: the DataFrame infers the string dtype."""
    out: list[str | None] = [str(v) for v in values]
    if missing is not None:
        for i in np.flatnonzero(missing):
            out[i] = None
    return out


def _with_nan(values: np.ndarray, missing: np.ndarray) -> np.ndarray:
    out = np.asarray(values, dtype=float).copy()
    out[missing] = np.nan
    return out


def _bernoulli(rng: np.random.Generator, logit: np.ndarray) -> np.ndarray:
    return (rng.random(len(logit)) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)


def _check_rows(n_rows: int, available: int | None = None) -> None:
    if n_rows < 1:
        raise ValueError(f"n_rows must be at least 1, got {n_rows}")
    if available is not None and n_rows > available:
        raise ValueError(f"n_rows must be at most {available} (the shipped data), got {n_rows}")


def make_credit(n_rows: int = 2500,
                random_state: int | None = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Binary loan default (y ``default``: 1 = defaulted, about 21 %), generated.

    Columns: age (int64), income (float64, lognormal, NaN ~5 %), debt_ratio (float64),
    employment (str: salaried / self-employed / unemployed / retired, NaN ~5 %),
    home (str: rent / own / mortgage), purpose (str, 6 values), n_late_payments (int64,
    Poisson), years_at_job (float64, NaN for the unemployed and ~2 % more, ~7 % in all).
    Default risk grows with debt burden (debt_ratio × low income), late payments,
    unemployment and youth; the target is a noisy Bernoulli draw of that risk.
    """
    _check_rows(n_rows)
    rng = _rng(random_state)
    n = n_rows
    age = np.clip(np.round(rng.normal(42, 13, n)), 19, 85).astype(np.int64)
    p_retired = 1.0 / (1.0 + np.exp(-(age - 64) / 2.5))
    u = rng.random(n)
    employment = np.where(
        u < p_retired, "retired",
        np.where(u < p_retired + (1 - p_retired) * 0.07, "unemployed",
                 np.where(u < p_retired + (1 - p_retired) * 0.27, "self-employed",
                          "salaried")))
    log_income = (10.75 + 0.012 * np.clip(age - 22, 0, 30) + rng.normal(0, 0.45, n)
                  + np.select([employment == "unemployed", employment == "retired",
                               employment == "self-employed"], [-0.9, -0.35, 0.1], 0.0)
                  + np.where(employment == "self-employed", rng.normal(0, 0.35, n), 0.0))
    income = np.round(np.exp(log_income), 0)
    debt_ratio = np.round(np.clip(rng.beta(2.0, 4.5, n) * 1.3, 0.0, 1.2), 3)
    home = np.where(age < 30, rng.choice(["rent", "own", "mortgage"], n, p=[0.7, 0.05, 0.25]),
                    rng.choice(["rent", "own", "mortgage"], n, p=[0.3, 0.3, 0.4]))
    purpose = rng.choice(["car", "debt_consolidation", "home_improvement", "education",
                          "medical", "business"], n, p=[0.25, 0.3, 0.15, 0.1, 0.1, 0.1])
    years_at_job = np.round(np.minimum(rng.exponential(0.18 * (age - 17)), age - 17), 1)
    years_at_job[employment == "unemployed"] = 0.0
    lam = 0.25 + 1.2 * debt_ratio + np.where(employment == "unemployed", 0.6, 0.0)
    n_late = rng.poisson(lam).astype(np.int64)

    burden = debt_ratio * 50_000.0 / income
    logit = (-1.7 + 1.6 * np.tanh(2.0 * (burden - 0.5)) + 0.9 * (burden > 1.0)
             + 0.55 * np.minimum(n_late, 4)
             + np.select([employment == "unemployed", employment == "self-employed",
                          employment == "retired"], [1.1, 0.35, -0.3], 0.0)
             + 0.8 * (age < 25) - 0.25 * np.log1p(years_at_job)
             + np.select([purpose == "business", purpose == "medical",
                          purpose == "home_improvement"], [0.6, 0.35, -0.3], 0.0)
             - 0.4 * (home == "own") + 0.4 * (n_late >= 2) * (home == "rent"))
    y = _bernoulli(rng, logit)

    years_missing = (employment == "unemployed") | _mask(rng, n, 0.02)
    X = pd.DataFrame({
        "age": age,
        "income": _with_nan(income, _mask(rng, n, 0.05)),
        "debt_ratio": debt_ratio,
        "employment": _strings(employment, _mask(rng, n, 0.05)),
        "home": _strings(home),
        "purpose": _strings(purpose),
        "n_late_payments": n_late,
        "years_at_job": _with_nan(years_at_job, years_missing),
    })
    return X, pd.Series(y, name="default")


def make_triage(n_rows: int = 2500,
                random_state: int | None = 0) -> tuple[pd.DataFrame, pd.Series]:
    """3-class emergency triage (y ``urgency``: str low / medium / high, ~50/33/17 %), generated.

    Columns: age (int64), heart_rate (float64, NaN ~4 %), temperature (float64, °C, NaN
    ~6 %), systolic_bp (float64, NaN ~5 %), pain_score (int64, 0-10), arrival (str:
    ambulance / walk-in / referral), symptom (str, 7 values, NaN ~5 %). Urgency follows a
    noisy score of abnormal vitals (tachycardia, fever, hypotension), pain, age × chest
    pain, breathlessness and ambulance arrival.
    """
    _check_rows(n_rows)
    rng = _rng(random_state)
    n = n_rows
    symptoms = ["chest_pain", "shortness_of_breath", "abdominal_pain", "injury", "fever",
                "headache", "dizziness"]
    symptom = rng.choice(symptoms, n, p=[0.14, 0.1, 0.18, 0.22, 0.12, 0.14, 0.1])
    age = np.clip(np.round(rng.gamma(4.0, 11.0, n)), 16, 98).astype(np.int64)
    sick = rng.gamma(1.5, 1.0, n)  # hidden acuity
    sick += np.select([symptom == "chest_pain", symptom == "shortness_of_breath",
                       symptom == "headache"], [0.8, 0.9, -0.4], 0.0) + 0.015 * (age - 45)
    sick = np.clip(sick, 0.0, None)
    heart_rate = np.round(rng.normal(78, 11, n) + 9.0 * sick, 0)
    temperature = np.round(rng.normal(36.9, 0.35, n)
                           + np.where(symptom == "fever", rng.gamma(2.0, 0.6, n), 0.0)
                           + 0.15 * sick, 1)
    systolic_bp = np.round(rng.normal(128, 17, n) + 0.3 * (age - 45)
                           - np.where(sick > 2.5, 12.0 * (sick - 2.5), 0.0), 0)
    pain_score = np.clip(np.round(rng.normal(3.5, 2.2, n) + 0.9 * sick
                                  + 2.0 * (symptom == "injury")), 0, 10).astype(np.int64)
    p_amb = 1.0 / (1.0 + np.exp(-(1.1 * sick - 3.2 + 0.02 * (age - 45))))
    u = rng.random(n)
    arrival = np.where(u < p_amb, "ambulance",
                       np.where(u < p_amb + (1 - p_amb) * 0.25, "referral", "walk-in"))

    score = (0.06 * np.clip(heart_rate - 95, 0, None) + 1.0 * (temperature >= 38.5)
             + 0.08 * np.clip(100 - systolic_bp, 0, None) + 0.22 * pain_score
             + 1.3 * (symptom == "chest_pain") * (age >= 55)
             + 1.0 * (symptom == "shortness_of_breath") + 0.9 * (arrival == "ambulance")
             - 0.5 * (arrival == "referral") + rng.logistic(0, 0.7, n))
    low, high = np.quantile(score, [0.5, 0.83])
    urgency = np.where(score >= high, "high", np.where(score >= low, "medium", "low"))

    X = pd.DataFrame({
        "age": age,
        "heart_rate": _with_nan(heart_rate, _mask(rng, n, 0.04)),
        "temperature": _with_nan(temperature, _mask(rng, n, 0.06)),
        "systolic_bp": _with_nan(systolic_bp, _mask(rng, n, 0.05)),
        "pain_score": pain_score,
        "arrival": _strings(arrival),
        "symptom": _strings(symptom, _mask(rng, n, 0.05)),
    })
    return X, pd.Series(_strings(urgency), name="urgency")


def make_claims(n_rows: int = 2500,
                random_state: int | None = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Regression: insurance claim cost (y ``claim_cost``, float64, lognormal-skewed), generated.

    Columns: driver_age (int64), vehicle_age (int64), vehicle_type (str: hatchback / sedan
    / suv / van / sports), region (str: urban / suburban / rural / mountain, NaN ~6 %),
    annual_km (float64, lognormal, NaN ~5 %), prior_claims (int64, Poisson), bonus_malus
    (float64, 0.5-2.5, NaN ~4 %). The log cost rises for young and old drivers, sports
    cars × young drivers, vans, distance driven, prior claims, bonus-malus and cities.
    """
    _check_rows(n_rows)
    rng = _rng(random_state)
    n = n_rows
    driver_age = np.clip(np.round(rng.normal(45, 15, n)), 18, 90).astype(np.int64)
    vehicle_age = np.clip(np.round(rng.gamma(2.0, 3.5, n)), 0, 30).astype(np.int64)
    vehicle_type = rng.choice(["hatchback", "sedan", "suv", "van", "sports"], n,
                              p=[0.3, 0.32, 0.2, 0.11, 0.07])
    region = rng.choice(["urban", "suburban", "rural", "mountain"], n,
                        p=[0.38, 0.32, 0.22, 0.08])
    annual_km = np.round(np.exp(rng.normal(9.3, 0.55, n)
                                + 0.25 * (vehicle_type == "van") - 0.2 * (region == "urban")), 0)
    prior_claims = rng.poisson(0.25 + 0.35 * (driver_age < 25)).astype(np.int64)
    bonus_malus = np.round(np.clip(0.6 + 0.004 * np.clip(70 - driver_age, 0, None) * 3
                                   + 0.25 * prior_claims + rng.normal(0, 0.15, n), 0.5, 2.5), 2)

    young = np.clip(30 - driver_age, 0, None) / 12.0
    old = np.clip(driver_age - 70, 0, None) / 15.0
    log_cost = (7.4 + 0.5 * young + 0.35 * old
                + np.select([vehicle_type == "suv", vehicle_type == "van",
                             vehicle_type == "sports"], [0.25, 0.4, 0.55], 0.0)
                + 0.7 * young * (vehicle_type == "sports") - 0.02 * vehicle_age
                + 0.3 * np.log(annual_km / 11_000.0) + 0.12 * np.minimum(prior_claims, 3)
                + 0.45 * (bonus_malus - 1.0)
                + np.select([region == "urban", region == "mountain"], [0.25, 0.15], 0.0)
                + rng.normal(0, 0.4, n))
    claim_cost = np.round(np.exp(log_cost), 2)

    X = pd.DataFrame({
        "driver_age": driver_age,
        "vehicle_age": vehicle_age,
        "vehicle_type": _strings(vehicle_type),
        "region": _strings(region, _mask(rng, n, 0.06)),
        "annual_km": _with_nan(annual_km, _mask(rng, n, 0.05)),
        "prior_claims": prior_claims,
        "bonus_malus": _with_nan(bonus_malus, _mask(rng, n, 0.04)),
    })
    return X, pd.Series(claim_cost, name="claim_cost")


def load_diabetes_mixed(n_rows: int = 442,
                        random_state: int | None = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Regression on scikit-learn's shipped diabetes data (442 patients, y ``progression``).

    Columns as ``load_diabetes(scaled=False)``: age, bmi, bp, s1-s6 (float64) and sex as
    str female / male (the source codes it 1 / 2 without saying which is which; 1 is
    mapped to female here). Missing values drawn with ``random_state``: NaN in bp (~5 %)
    and s3 (~6 %), NaN in sex (~4 %). ``n_rows`` < 442 takes a random subset.
    """
    _check_rows(n_rows, 442)
    rng = _rng(random_state)
    data = load_diabetes(scaled=False, as_frame=True)
    X, y = data.data.copy(), data.target.rename("progression")
    n = len(X)
    sex = np.where(X["sex"].to_numpy() == 1.0, "female", "male")
    X["sex"] = _strings(sex, _mask(rng, n, 0.04))
    X["bp"] = _with_nan(X["bp"].to_numpy(), _mask(rng, n, 0.05))
    X["s3"] = _with_nan(X["s3"].to_numpy(), _mask(rng, n, 0.06))
    return _subset(X, y, n_rows, rng)


def load_wine_mixed(n_rows: int = 178,
                    random_state: int | None = 0) -> tuple[pd.DataFrame, pd.Series]:
    """3-class wine cultivar (y ``cultivar``: int64 0 / 1 / 2), scikit-learn's shipped wine data.

    Columns: alcohol, malic_acid (NaN ~6 %), magnesium (NaN ~5 %), flavanoids, hue,
    od280_od315 (renamed from od280/od315_of_diluted_wines), proline (all float64), and
    colour_band (str pale / medium / deep: color_intensity binned at 3.5 and 7, which
    replaces it; NaN ~5 %). Missing values drawn with ``random_state``. ``n_rows`` < 178
    takes a random subset.
    """
    _check_rows(n_rows, 178)
    rng = _rng(random_state)
    data = load_wine(as_frame=True)
    src, y = data.data, data.target.rename("cultivar").astype(np.int64)
    n = len(src)
    colour = src["color_intensity"].to_numpy()
    band = np.where(colour < 3.5, "pale", np.where(colour < 7.0, "medium", "deep"))
    X = pd.DataFrame({
        "alcohol": src["alcohol"].to_numpy(),
        "malic_acid": _with_nan(src["malic_acid"].to_numpy(), _mask(rng, n, 0.06)),
        "magnesium": _with_nan(src["magnesium"].to_numpy(), _mask(rng, n, 0.05)),
        "flavanoids": src["flavanoids"].to_numpy(),
        "hue": src["hue"].to_numpy(),
        "od280_od315": src["od280/od315_of_diluted_wines"].to_numpy(),
        "proline": src["proline"].to_numpy(),
        "colour_band": _strings(band, _mask(rng, n, 0.05)),
    })
    return _subset(X, y, n_rows, rng)


def make_churn(n_rows: int = 2500,
               random_state: int | None = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Binary telecom churn (y ``churn``: 1 = left, about 30 %), generated.

    Columns: tenure_months (int64, 0-72), monthly_charges (float64, right-skewed, NaN
    ~4 %), contract (str: month-to-month / one-year / two-year), payment (str: card /
    transfer / check, NaN ~6 %), support_calls (int64, Poisson), internet (str: fiber /
    dsl / none), senior (int64 0 / 1). Churn rises on month-to-month contracts, short
    tenure, high charges early on, fiber, paper checks and support calls (more so for
    seniors).
    """
    _check_rows(n_rows)
    rng = _rng(random_state)
    n = n_rows
    contract = rng.choice(["month-to-month", "one-year", "two-year"], n, p=[0.55, 0.22, 0.23])
    base_tenure = np.select([contract == "month-to-month", contract == "one-year"], [14, 32], 50)
    tenure = np.clip(np.round(rng.exponential(base_tenure)), 0, 72).astype(np.int64)
    internet = rng.choice(["fiber", "dsl", "none"], n, p=[0.44, 0.34, 0.22])
    monthly = np.select([internet == "fiber", internet == "dsl"], [72.0, 45.0], 19.0)
    monthly = np.round(monthly * np.exp(rng.normal(0.0, 0.28, n))
                       + rng.exponential(6.0, n), 2)
    payment = rng.choice(["card", "transfer", "check"], n, p=[0.38, 0.34, 0.28])
    senior = (rng.random(n) < 0.16).astype(np.int64)
    support_calls = rng.poisson(0.8 + 0.7 * (internet == "fiber") + 0.5 * senior).astype(np.int64)

    logit = (-1.8 + np.select([contract == "month-to-month", contract == "two-year"],
                              [1.2, -1.4], 0.0)
             - 0.55 * np.log1p(tenure) + 0.9
             + 0.6 * (internet == "fiber") - 0.4 * (internet == "none")
             + 0.025 * np.clip(monthly - 70, 0, None) * (tenure < 12)
             + 0.5 * (payment == "check") - 0.2 * (payment == "card")
             + 0.3 * np.minimum(support_calls, 5) + 0.35 * senior * (support_calls >= 3))
    y = _bernoulli(rng, logit)

    X = pd.DataFrame({
        "tenure_months": tenure,
        "monthly_charges": _with_nan(monthly, _mask(rng, n, 0.04)),
        "contract": _strings(contract),
        "payment": _strings(payment, _mask(rng, n, 0.06)),
        "support_calls": support_calls,
        "internet": _strings(internet),
        "senior": senior,
    })
    return X, pd.Series(y, name="churn")


def preprocessor() -> ColumnTransformer:
    """What users write before the estimator for these tables: numbers median-imputed then
    scaled, strings most-frequent-imputed then one-hot encoded (unseen categories ignored)."""
    numbers = Pipeline([("impute", SimpleImputer(strategy="median")),
                        ("scale", StandardScaler())])
    strings = Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                        ("onehot", OneHotEncoder(handle_unknown="ignore"))])
    return ColumnTransformer([
        ("num", numbers, make_column_selector(dtype_include="number")),
        ("cat", strings, make_column_selector(dtype_exclude="number")),
    ])


def _subset(X: pd.DataFrame, y: pd.Series, n_rows: int,
            rng: np.random.Generator) -> tuple[pd.DataFrame, pd.Series]:
    """``n_rows`` of a shipped data set drawn at random (all of them when it has fewer)."""
    if n_rows >= len(X):
        return X, y
    rows = np.sort(rng.choice(len(X), n_rows, replace=False))
    return X.iloc[rows].reset_index(drop=True), y.iloc[rows].reset_index(drop=True)
