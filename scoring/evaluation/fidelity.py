"""How close a scoring explainer's values are to a reference: the fidelity metrics."""

from __future__ import annotations

import numpy as np


def _rows(values: np.ndarray) -> np.ndarray:
    """``(n_rows, n_features)`` or ``(n_classes, n_rows, n_features)`` ->
    ``(n_rows * n_classes, n_features)``: one explanation vector per row and output."""
    values = np.asarray(values, dtype=float)
    if values.ndim == 3:
        values = np.transpose(values, (1, 0, 2)).reshape(-1, values.shape[-1])
    return values


def relative_l2_error(values: np.ndarray, reference: np.ndarray) -> float:
    """``||values - reference|| / ||reference||`` over all rows and outputs."""
    ref = _rows(reference)
    norm = np.linalg.norm(ref)
    return float(np.linalg.norm(_rows(values) - ref) / norm) if norm > 0 else 0.0


def top_k_precision(values: np.ndarray, reference: np.ndarray, k: int = 5) -> float:
    """Mean share of the reference's top-k features (by |value|) found in the top-k."""
    a, b = _rows(values), _rows(reference)
    k = min(k, a.shape[1])
    top_a = np.argsort(-np.abs(a), axis=1, kind="stable")[:, :k]
    top_b = np.argsort(-np.abs(b), axis=1, kind="stable")[:, :k]
    hits = [len(set(x) & set(y)) / k for x, y in zip(top_a, top_b, strict=True)]
    return float(np.mean(hits))


def top_k_sign_agreement(values: np.ndarray, reference: np.ndarray, k: int = 5) -> float:
    """Share of the reference's top-k features whose sign the values get right."""
    a, b = _rows(values), _rows(reference)
    k = min(k, a.shape[1])
    top_b = np.argsort(-np.abs(b), axis=1, kind="stable")[:, :k]
    same = np.sign(np.take_along_axis(a, top_b, 1)) == np.sign(np.take_along_axis(b, top_b, 1))
    return float(same.mean())


def additivity_gap(values: np.ndarray, expected_values, outputs: np.ndarray) -> float:
    """Largest ``|sum(values) + expected - model output|`` over rows and outputs.

    ``outputs`` is ``(n_rows, n_outputs)`` as returned by ``ModelFunction``.
    """
    values = np.asarray(values, dtype=float)
    ev = np.asarray(expected_values, dtype=float)
    outputs = np.asarray(outputs, dtype=float)
    if values.ndim == 3 and values.shape[0] == 2 and outputs.shape[1] == 1:
        outputs = np.concatenate([-outputs, outputs], axis=1)  # a binary margin, both classes
    if values.ndim == 3:
        total = values.sum(-1) + ev.reshape(-1, 1)  # (O, n)
        return float(np.abs(total - np.asarray(outputs).T).max())
    total = values.sum(-1) + float(ev.reshape(-1)[0])
    return float(np.abs(total - np.asarray(outputs)[:, 0]).max())


def fidelity_report(values, reference, expected_values, outputs, k: int = 5) -> dict:
    """All fidelity metrics of ``values`` against ``reference`` in one dict."""
    return {
        "relative_l2_error": relative_l2_error(values, reference),
        "top5_precision": top_k_precision(values, reference, k),
        "top5_sign_agreement": top_k_sign_agreement(values, reference, k),
        "additivity_gap": additivity_gap(values, expected_values, outputs),
    }
