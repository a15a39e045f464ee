"""Each feature's share of a row's attribution, served and at training time: the numbers
the service exports to show when the reasons behind predictions shift.

A row's share for feature ``j`` (per explainer output: one per class, or the regressor's
one output) is ``|phi_j| / sum_k |phi_k|``, the fraction of the row's total absolute
importance that feature carries; a row whose importances are all zero carries no
attribution and is left out. The live share of a feature over a window is the mean of its
per-row shares over the rows explained in it; the reference is the same mean over the rows
of the bundle's global explanation. (The mean of per-row shares is not the normalised mean
of ``|phi|``: rows with large attributions would weigh more in the latter.)
"""

from __future__ import annotations

import numpy as np

from scoring.core.explanation import REFERENCE_KEY, Explanation
from scoring.core.plain import plain

OTHER = "other"


def _by_output(values: np.ndarray) -> np.ndarray:
    """``(n_rows, n_features)`` or ``(n_classes, n_rows, n_features)`` as
    ``(n_outputs, n_rows, n_features)``."""
    return values.reshape((-1,) + values.shape[-2:])


def row_shares(local_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(shares, attributed)``: each feature's share of its row's total |importance|,
    ``(n_outputs, n_rows, n_features)`` (zeros for a row without attribution), and which
    rows have any, ``(n_outputs, n_rows, 1)``."""
    absolute = _by_output(np.abs(np.asarray(local_values, dtype=float)))
    totals = absolute.sum(-1, keepdims=True)
    attributed = totals > 0
    # rows without attribution have only zeros: dividing them by 1 leaves them out
    return absolute / np.where(attributed, totals, 1.0), attributed


def mean_row_shares(local_values: np.ndarray) -> np.ndarray:
    """The mean per-row share of each feature over the rows with any attribution:
    ``(n_features,)`` for regression values ``(n_rows, n_features)``, ``(n_classes,
    n_features)`` for classification values ``(n_classes, n_rows, n_features)``; zeros
    when no row has any."""
    shares, attributed = row_shares(local_values)
    means = shares.sum(1) / np.maximum(attributed.sum(1), 1)
    return means.reshape(np.shape(local_values)[:-2] + means.shape[-1:])


def with_reference(local: Explanation) -> Explanation:
    """The global explanation of a local one, holding in ``extra[REFERENCE_KEY]`` the mean
    per-row share of each feature (:func:`mean_row_shares`): the reference a bundle's
    global explanation gives the service's attribution monitoring."""
    glob = local.without_local()
    glob.extra[REFERENCE_KEY] = plain(mean_row_shares(local.local_importance_values))
    return glob


class AttributionMonitor:
    """The features to watch (the ``top_n`` of the global explanation's ranking, the rest
    summed into ``other``), their reference shares, and the share sums of served
    explanations.

    ``global_explanation``: the bundle's, holding :data:`REFERENCE_KEY` in ``extra`` (set
    by :func:`with_reference`); when it lacks it (bundles saved before, or
    global explanations without local values such as PFI's), the reference falls back to
    the normalised global importances, and ``exact_reference`` is ``False``.

    Attributes: ``outputs`` (label per explainer output: class names, or the model output
    of a regressor), ``labels`` (monitored feature names, then :data:`OTHER` when some
    features are left out), ``reference_shares`` ``(n_outputs, n_labels)``, rows summing
    to 1.
    """

    def __init__(self, global_explanation: Explanation, top_n: int = 10) -> None:
        if top_n < 1:
            raise ValueError(f"top_n must be a positive integer, got {top_n!r}")
        glob = global_explanation
        self.features = list(glob.features)
        self.outputs = [str(c) for c in glob.classes] if glob.is_classification \
            else [glob.model_output or "output"]
        order = np.argsort(-glob.global_importance_values, kind="stable")
        columns = np.sort(order[:top_n])
        top = [self.features[i] for i in columns]
        # a feature really called "other" keeps its name: the bucket takes another
        other = OTHER if OTHER not in top else f"{OTHER}_features"
        self.labels = top + ([other] if len(self.features) > top_n else [])
        # (n_features, n_labels): 1 where a feature's share goes; shares @ it sums buckets
        self._buckets = np.zeros((len(self.features), len(self.labels)))
        self._buckets[:, -1] = 1.0  # the other bucket, unless every feature has its own
        self._buckets[columns] = 0.0
        self._buckets[columns, np.arange(len(columns))] = 1.0
        self.exact_reference = REFERENCE_KEY in glob.extra
        reference = np.asarray(glob.extra[REFERENCE_KEY], dtype=float) \
            if self.exact_reference else glob.global_importance_values / max(
                glob.global_importance_values.sum(), np.finfo(float).tiny)
        self.reference_shares = np.broadcast_to(
            reference, (len(self.outputs), len(self.features))) @ self._buckets

    def share_sums(self, explanation: Explanation) -> tuple[np.ndarray, np.ndarray] | None:
        """``(rows (n_outputs,), sums (n_outputs, n_labels))``: per output, the rows with
        any attribution and the sum of their shares per monitored feature; ``None`` when
        ``explanation`` is over other features (engineered columns, ``get_raw=False``)."""
        if explanation.features != self.features:
            return None
        shares, attributed = row_shares(explanation.local_importance_values)
        return attributed.sum((1, 2)).astype(float), shares.sum(1) @ self._buckets
