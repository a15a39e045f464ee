"""Margin values carried through a probability link: the base of the amortized explainer
for boosted trees' probabilities."""

import numpy as np
from sklearn.datasets import make_classification
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier

from scoring.shapley.exact import exact_shapley_values
from scoring.shapley.link import (
    _enumerated,
    _sampled,
    inverse_link,
    link_values,
    probability_link,
)


def test_links_of_scikit_learn_boosting_are_recognised():
    X, y = make_classification(n_samples=300, n_features=6, n_informative=4,
                               n_classes=3, random_state=0)
    multi = HistGradientBoostingClassifier(max_iter=20).fit(X, y)
    assert probability_link(multi.decision_function(X), multi.predict_proba(X)) == "softmax"
    binary = GradientBoostingClassifier(n_estimators=10).fit(X, y == 0)
    assert probability_link(binary.decision_function(X),
                            binary.predict_proba(X)) == "logistic"
    shifted = binary.predict_proba(X) + np.array([1e-6, -1e-6])
    assert probability_link(binary.decision_function(X), shifted) is None


def _assert_values_of_the_link_game(phi: np.ndarray, expected: np.ndarray,
                                    link: str) -> None:
    """``link_values`` of each row of margin values ``phi`` are the exact Shapley values of
    the game over its columns as binary players: column ``j`` present adds ``phi_j`` to the
    margin, and the link turns the margin into the payoff."""
    values = link_values(phi, expected, link)
    width = phi.shape[1]
    for i in range(len(phi)):
        def game(Z, i=i):
            return inverse_link(link, expected + Z @ phi[i])
        exact = exact_shapley_values(game, np.ones((1, width)), np.zeros((1, width)))
        np.testing.assert_allclose(values[i], exact[0], atol=1e-12)


def test_enumerated_values_are_those_of_the_link_game():
    rng = np.random.default_rng(0)
    _assert_values_of_the_link_game(rng.normal(size=(4, 5, 3)), rng.normal(size=3),
                                    "softmax")


def test_sampled_orders_are_efficient_and_close_to_enumeration():
    rng = np.random.default_rng(1)
    phi, expected = 0.5 * rng.normal(size=(3, 11, 1)), np.array([0.2])
    sampled, exact = _sampled(phi, expected, "logistic"), _enumerated(phi, expected, "logistic")
    total = inverse_link("logistic", expected + phi.sum(axis=1)) - inverse_link(
        "logistic", expected[None])
    np.testing.assert_allclose(sampled.sum(axis=1), total, atol=1e-12)
    np.testing.assert_allclose(exact.sum(axis=1), total, atol=1e-12)
    assert np.abs(sampled - exact).max() < 0.1 * np.abs(exact).max()


def test_logistic_values_of_both_classes_are_those_of_the_link_game():
    """The logistic link computes the second class only and mirrors the first."""
    rng = np.random.default_rng(2)
    _assert_values_of_the_link_game(rng.normal(size=(3, 6, 1)), np.array([-0.4]), "logistic")
