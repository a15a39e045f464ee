"""RBF support vector machines as arrays: kernel factors per column group, and the model
output from kernel values (decision values, Platt scaling, pairwise coupling, or the
calibrators of a ``CalibratedClassifierCV`` around them)."""

from __future__ import annotations

from typing import Any

import numpy as np

# libsvm clips pairwise probabilities to [_MIN_PROB, 1 - _MIN_PROB] before coupling them
_MIN_PROB = 1e-7
_CLASSIFIERS, _REGRESSORS = ("c_svc", "nu_svc"), ("epsilon_svr", "nu_svr")
_CALIBRATIONS = ("sigmoid", "isotonic")


def unsupported_svm(model: Any, output: str) -> str | None:
    """Why :func:`rbf_machine` cannot give ``output`` of ``model``, or ``None``."""
    if _is_calibrated(model):
        if output != "predict_proba":
            return f"it explains predict_proba of CalibratedClassifierCV, not {output}"
        if model.method not in _CALIBRATIONS:
            return (f"its calibration method is {model.method!r}; only 'sigmoid' and "
                    "'isotonic' are read")
        for calibrated in model.calibrated_classifiers_:
            reason = _unsupported_machine(_unfrozen(calibrated.estimator))
            if reason is None and getattr(calibrated.estimator, "_impl", None) not in \
                    _CLASSIFIERS:
                reason = "it is not a classifier"
            if reason is not None:
                return f"its calibrated estimator: {reason}"
        return None
    reason = _unsupported_machine(model)
    if reason is not None:
        return reason
    wanted = "predict_proba" if model._impl in _CLASSIFIERS else "predict"
    if output != wanted:
        return f"it explains {wanted} of {type(model).__name__}, not {output}"
    if model._impl in _CLASSIFIERS and np.size(getattr(model, "_probA", ())) == 0:
        return ("it has no probabilities (fitted with probability=False; calibrate it "
                "instead: CalibratedClassifierCV(SVC(), ensemble=False))")
    return None


def _unsupported_machine(model: Any) -> str | None:
    impl = getattr(model, "_impl", None)
    if impl not in _CLASSIFIERS + _REGRESSORS or not hasattr(model, "support_vectors_"):
        return "it is not a fitted SVC, NuSVC, SVR or NuSVR"
    if getattr(model, "kernel", None) != "rbf":
        return f"its kernel is {model.kernel!r}; only 'rbf' factorises over columns"
    return None


def _is_calibrated(model: Any) -> bool:
    return type(model).__name__ == "CalibratedClassifierCV" and hasattr(
        model, "calibrated_classifiers_")


def _unfrozen(estimator: Any) -> Any:
    """The estimator a ``FrozenEstimator`` (calibration of a prefitted model) wraps."""
    return estimator.estimator if type(estimator).__name__ == "FrozenEstimator" \
        else estimator


def rbf_machine(model: Any) -> RBFMachine | CalibratedMachine:
    """The machine of an RBF SVM, or of a ``CalibratedClassifierCV`` around RBF SVCs."""
    return CalibratedMachine(model) if _is_calibrated(model) else RBFMachine(model)


class RBFMachine:
    """A fitted scikit-learn RBF ``SVC``/``NuSVC`` (``predict_proba``) or ``SVR``/``NuSVR``
    (``predict``), read from the arrays scikit-learn itself hands libsvm at predict time.

    The kernel ``exp(-gamma ||x - sv||^2)`` is a product over columns, so over column
    groups: :meth:`log_factors` gives each group's factor and a caller may combine the
    factors of different rows (hybrid rows) before :meth:`outputs` turns the kernel
    values into the model output.
    """

    def __init__(self, model: Any) -> None:
        sv = model.support_vectors_
        self.support_vectors = np.asarray(sv.toarray() if hasattr(sv, "toarray") else sv,
                                          dtype=float)  # (n_sv, P)
        self.gamma = float(model._gamma)
        dual = model._dual_coef_
        dual = np.asarray(dual.toarray() if hasattr(dual, "toarray") else dual, dtype=float)
        self.intercept = np.asarray(model._intercept_, dtype=float)  # (n_pairs,)
        self.classifier = model._impl in _CLASSIFIERS
        if not self.classifier:
            self.coef = dual.T  # (n_sv, 1)
            return
        # one-vs-one: pair (i, j) weighs class i's support vectors by row j - 1 of the dual
        # coefficients and class j's by row i (libsvm's layout)
        k = len(model.classes_)
        starts = np.concatenate([[0], np.cumsum(model._n_support)])
        self.pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
        self.coef = np.zeros((len(self.support_vectors), len(self.pairs)))
        for p, (i, j) in enumerate(self.pairs):
            self.coef[starts[i]:starts[i + 1], p] = dual[j - 1, starts[i]:starts[i + 1]]
            self.coef[starts[j]:starts[j + 1], p] = dual[i, starts[j]:starts[j + 1]]
        self.n_classes = k
        # how many pairs each class is the second of (the vote it starts with, see decisions)
        self.pair_losers = [sum(j == c for _, j in self.pairs) for c in range(k)]
        prob_a, prob_b = np.asarray(model._probA, float), np.asarray(model._probB, float)
        if prob_a.size:  # probability=True
            self.platt_coef = self.coef * prob_a
            self.platt_intercept = self.intercept * prob_a + prob_b

    def log_factors(self, X: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
        """``(n, G, n_sv)``: ``-gamma`` times the squared distance of each row of ``X`` to
        each support vector over the columns of each group (``groups``: the group of each
        column, ``None``: one group per column). The log kernel is their sum over groups."""
        squared = (X[:, None, :] - self.support_vectors[None]) ** 2  # (n, n_sv, P)
        if groups is None:
            return -self.gamma * squared.transpose(0, 2, 1)
        member = np.zeros((X.shape[1], int(np.max(groups)) + 1))
        member[np.arange(X.shape[1]), groups] = 1.0
        return -self.gamma * np.einsum("nsp,pg->ngs", squared, member)

    def outputs(self, kernel: np.ndarray) -> np.ndarray:
        """The model output ``(..., O)`` from kernel values ``(..., n_sv)``."""
        # products batched over the leading axes: one large product of this thin shape
        # wakes OpenBLAS's threads, which on a busy machine costs more than it saves
        if not self.classifier:
            return kernel @ self.coef.astype(kernel.dtype) + self.intercept
        # Platt scaling, P(i beats j) = 1 / (1 + exp(A * decision + B)), with A and B folded
        # into the coefficients; pair-major rows keep the arithmetic below contiguous
        z = np.array(np.moveaxis(kernel @ self.platt_coef.astype(kernel.dtype), -1, 0),
                     dtype=float, order="C")  # (n_pairs, ...)
        z += self.platt_intercept.reshape(-1, *[1] * (z.ndim - 1))
        # past |z| = 20 the clip to [_MIN_PROB, 1 - _MIN_PROB] decides anyway (no overflow)
        np.clip(z, -20.0, 20.0, out=z)
        np.exp(z, out=z)
        z += 1.0
        np.reciprocal(z, out=z)
        np.clip(z, _MIN_PROB, 1 - _MIN_PROB, out=z)
        return couple(z, self.pairs, self.n_classes)


    def decisions(self, kernel: np.ndarray) -> list[np.ndarray]:
        """A classifier's ``decision_function`` from kernel values ``(..., n_sv)``, one
        array ``(...)`` per column: one column (two classes) or one per class
        (one-vs-rest from the pairwise decisions, as scikit-learn's
        ``decision_function_shape="ovr"``)."""
        # pair-major, as in outputs: each pair's arithmetic below runs on contiguous rows
        pairwise = np.array(np.moveaxis(kernel @ self.coef.astype(kernel.dtype), -1, 0),
                            dtype=float, order="C")  # (n_pairs, ...), libsvm's sign
        pairwise += self.intercept.reshape(-1, *[1] * (pairwise.ndim - 1))
        if self.n_classes == 2:
            return [-pairwise[0]]
        # scikit-learn's _ovr_decision_function, pair by pair in its order: a vote for the
        # pair's winner, the decision value added to class i's confidence and taken from
        # class j's, the confidences squashed below 1/3; each pair's class j starts with
        # its vote and gives it back when class i wins
        votes = [np.zeros(pairwise.shape[1:]) for _ in range(self.n_classes)]
        confidence = [np.zeros(pairwise.shape[1:]) for _ in range(self.n_classes)]
        for decision, (i, j) in zip(pairwise, self.pairs, strict=True):
            confidence[i] += decision
            confidence[j] -= decision
            wins = decision >= 0
            votes[i] += wins
            votes[j] -= wins
        for v, c, lost in zip(votes, confidence, self.pair_losers, strict=True):
            squashed = np.abs(c)
            squashed += 1
            squashed *= 3
            np.divide(c, squashed, out=squashed)
            squashed += lost
            v += squashed
        return votes


class CalibratedMachine:
    """A ``CalibratedClassifierCV`` (sigmoid or isotonic, ``ensemble`` either way) around
    RBF ``SVC``/``NuSVC``: each calibrated classifier's machine gives decision values, its
    calibrators turn them into class probabilities, normalised and averaged over the
    classifiers as scikit-learn does. The support vectors of all the machines are one
    axis: :meth:`log_factors` and :meth:`outputs` work as :class:`RBFMachine`'s."""

    def __init__(self, model: Any) -> None:
        self.n_classes = len(model.classes_)
        self.members = []
        for calibrated in model.calibrated_classifiers_:
            estimator = _unfrozen(calibrated.estimator)
            # where each of the estimator's decision columns goes among the model's classes
            positions = np.searchsorted(model.classes_, estimator.classes_)
            if self.n_classes == 2:
                positions = positions[1:]
            self.members.append((RBFMachine(estimator), list(calibrated.calibrators),
                                 positions))
        self.support_vectors = np.concatenate([m.support_vectors for m, _, _ in self.members])
        self.bounds = np.cumsum([0] + [len(m.support_vectors) for m, _, _ in self.members])

    def log_factors(self, X: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
        """``(n, G, n_sv)`` over every machine's support vectors, each with its own gamma."""
        return np.concatenate([m.log_factors(X, groups) for m, _, _ in self.members],
                              axis=-1)

    def outputs(self, kernel: np.ndarray) -> np.ndarray:
        """Class probabilities ``(..., n_classes)`` from kernel values ``(..., n_sv)``."""
        shape = kernel.shape[:-1]
        total = [np.zeros(shape) for _ in range(self.n_classes)]
        for (machine, calibrators, positions), start, stop in zip(
                self.members, self.bounds[:-1], self.bounds[1:], strict=True):
            decisions = machine.decisions(kernel[..., start:stop])
            # class by class, as scikit-learn's _CalibratedClassifier.predict_proba
            proba = [np.zeros(shape) for _ in range(self.n_classes)]
            for decision, position, calibrator in zip(decisions, positions, calibrators,
                                                      strict=True):
                proba[position] = _calibrate(calibrator, decision)
            if self.n_classes == 2:
                proba[0] = 1.0 - proba[1]
            else:  # where every calibrator gives 0, the uniform distribution
                denominator = sum(proba)
                nonzero = denominator != 0
                proba = [p / denominator if nonzero.all() else np.divide(
                    p, denominator, where=nonzero, out=np.full(shape, 1.0 / self.n_classes))
                    for p in proba]
            for p, sum_p in zip(proba, total, strict=True):
                # a probability that exceeds 1 by rounding (up to 1e-5) is 1
                np.minimum(p, 1.0, out=p, where=p <= 1.0 + 1e-5)
                sum_p += p
        total = np.stack(total, axis=-1)
        return total if len(self.members) == 1 else total / len(self.members)


def _calibrate(calibrator: Any, decisions: np.ndarray) -> np.ndarray:
    """``calibrator.predict(decisions)`` from its fitted parameters, for any shape: its own
    input checks cost more than the arithmetic on the request path's small batches."""
    if hasattr(calibrator, "a_"):  # _SigmoidCalibration: expit(-(a d + b)), in one array
        z = decisions * calibrator.a_
        z += calibrator.b_
        # 1 / (1 + exp(z)) as the Platt scaling above: numpy's exp is several times faster
        # than scipy's expit; past z = 700 (where exp overflows) both are below 1e-304
        np.minimum(z, 700.0, out=z)
        np.exp(z, out=z)
        z += 1.0
        return np.reciprocal(z, out=z)
    # IsotonicRegression(out_of_bounds="clip"): linear between its thresholds, flat beyond
    return np.interp(decisions, calibrator.X_thresholds_, calibrator.y_thresholds_)


def couple(pairwise: np.ndarray, pairs: list[tuple[int, int]], k: int) -> np.ndarray:
    """Class probabilities ``(..., k)`` from pairwise ones ``(n_pairs, ...)`` (``P(class i
    beats class j)`` for each pair ``(i, j)``), as libsvm couples them (Wu, Lin and Weng
    2004: ``min p'Qp`` subject to ``sum(p) = 1``). libsvm iterates to a tolerance of
    ``0.005 / k``; this solves the same problem exactly, so the two differ by up to that
    tolerance."""
    if k == 2:  # the minimiser is the pairwise probability itself
        return np.stack([pairwise[0], 1 - pairwise[0]], axis=-1)
    beats = [[None] * k for _ in range(k)]
    for p, (i, j) in enumerate(pairs):
        beats[i][j], beats[j][i] = pairwise[p], 1 - pairwise[p]
    Q = [[None] * k for _ in range(k)]
    for t in range(k):
        Q[t][t] = sum(beats[s][t] ** 2 for s in range(k) if s != t)
        for s in range(t + 1, k):
            Q[t][s] = Q[s][t] = -beats[s][t] * beats[t][s]
    # p is proportional to Q^-1 1; Q is singular when the pairwise probabilities agree
    # exactly (then p spans its null space): a tiny ridge keeps the elimination defined
    ridge = 1e-12 * sum(Q[t][t] for t in range(k))
    for t in range(k):
        Q[t][t] = Q[t][t] + ridge
    p = _solve_positive(Q, [np.ones_like(pairwise[0]) for _ in range(k)])
    total = sum(p)
    return np.stack([pt / total for pt in p], axis=-1)


def _solve_positive(A: list[list[Any]], b: list[Any]) -> list[Any]:
    """``A x = b`` for a symmetric positive definite ``A`` given entry by entry (arrays of
    the same shape: many small systems at once), by Gaussian elimination."""
    k = len(b)
    A, b = [row[:] for row in A], b[:]
    for c in range(k):
        for r in range(c + 1, k):
            factor = A[r][c] / A[c][c]
            for j in range(c + 1, k):
                A[r][j] = A[r][j] - factor * A[c][j]
            b[r] = b[r] - factor * b[c]
    x = [None] * k
    for r in reversed(range(k)):
        x[r] = (b[r] - sum(A[r][j] * x[j] for j in range(r + 1, k))) / A[r][r]
    return x
