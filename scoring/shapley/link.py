"""Probabilities that are a link of an additive margin (boosting's softmax or logistic of
a sum over trees): the margin's exact values carried through the link.

The margin's Shapley values ``phi`` are exact and cheap (:class:`~scoring.shapley.tree_paths
.PathEngine`), the probabilities' are not: the link is not additive. The game
``S -> link(E[m] + sum_{j in S} phi_j)`` is a close, cheap stand-in for the probability
game: it applies the link coalition by coalition to the margin's own attribution. Its
Shapley values are the base an amortized explainer corrects (it learns only the residual).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np

from scoring.shapley.exact import coalitions, shapley_weights

Link = Literal["softmax", "logistic"]

# players whose coalitions are enumerated (2**M link evaluations a row); more are sampled
MAX_ENUMERATED_PLAYERS = 10
# orders (antithetic pairs, the same for every row) above MAX_ENUMERATED_PLAYERS
_SAMPLED_ORDERS = 64
_CHUNK_ROWS = 512


def inverse_link(link: Link, margins: np.ndarray) -> np.ndarray:
    """Probabilities ``(..., n_classes)`` from margins ``(..., n_margins)``."""
    if link == "logistic":
        p = 1.0 / (1.0 + np.exp(-margins[..., :1]))
        return np.concatenate([1.0 - p, p], axis=-1)
    shifted = np.exp(margins - margins.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def probability_link(margins: np.ndarray, probabilities: np.ndarray,
                     atol: float = 1e-9) -> Link | None:
    """The link that turns ``margins (n, n_margins)`` into ``probabilities (n, n_classes)``
    on these rows (to ``atol``: more for models that compute in float32), or ``None``."""
    margins = np.asarray(margins, dtype=float).reshape(len(probabilities), -1)
    link: Link = "logistic" if margins.shape[1] == 1 else "softmax"
    if (probabilities.shape[1] != (2 if link == "logistic" else margins.shape[1])
            or not np.allclose(inverse_link(link, margins), probabilities, rtol=0, atol=atol)):
        return None
    return link


def link_values(margin_values: np.ndarray, expected_margin: np.ndarray,
                link: Link) -> np.ndarray:
    """Shapley values ``(n, M, n_classes)`` of ``S -> link(E[m] + sum_{j in S} phi_j)``
    for margin values ``phi`` ``(n, M, n_margins)``: exact for up to
    ``MAX_ENUMERATED_PLAYERS`` players, else from fixed antithetic orders."""
    M = margin_values.shape[1]
    chunks = [_enumerated(part, expected_margin, link) if M <= MAX_ENUMERATED_PLAYERS
              else _sampled(part, expected_margin, link)
              for part in np.array_split(margin_values,
                                         max(1, -(-len(margin_values) // _CHUNK_ROWS)))]
    return np.concatenate(chunks)


@lru_cache(maxsize=8)
def _enumeration(M: int) -> tuple[np.ndarray, np.ndarray]:
    """``(coalitions (2**M, M) as floats, Shapley weights (M, 2**M))``: built once per
    player count, as every request of a model has the same."""
    members, weights = coalitions(M).astype(float), shapley_weights(M)
    members.flags.writeable = weights.flags.writeable = False
    return members, weights


def _enumerated(phi: np.ndarray, expected: np.ndarray, link: Link) -> np.ndarray:
    members, weights = _enumeration(phi.shape[1])
    margins = expected + members @ phi  # (n, 2**M, n_margins)
    if link == "logistic":  # the first class's values are the negatives of the second's
        second = weights @ (1.0 / (1.0 + np.exp(-margins)))
        return np.concatenate([-second, second], axis=-1)
    return weights @ inverse_link(link, margins)


def _sampled(phi: np.ndarray, expected: np.ndarray, link: Link) -> np.ndarray:
    n, M, _ = phi.shape
    orders = np.argsort(np.random.default_rng(0).random((_SAMPLED_ORDERS // 2, M)), axis=1)
    orders = np.concatenate([orders, orders[:, ::-1]])
    # margins after each prefix of each order: (n, orders, M + 1, n_margins)
    steps = np.cumsum(phi[:, orders], axis=2)
    prefix = expected + np.concatenate([np.zeros_like(steps[:, :, :1]), steps], axis=2)
    gains = np.diff(inverse_link(link, prefix), axis=2)  # (n, orders, M, n_classes)
    values = np.zeros((n, M, gains.shape[-1]))
    for t, order in enumerate(orders):
        values[:, order] += gains[:, t]
    return values / len(orders)
