"""Shapley values of RBF support vector machines, every coalition evaluated from kernel
factors instead of model calls."""

from __future__ import annotations

from typing import Any

import numpy as np

from scoring.model.svm import rbf_machine, unsupported_svm
from scoring.scoring_explainers.kernel import KernelScoringExplainer

# training rows on which the machine read from the model must give the model's outputs
_N_CHECK_ROWS = 20
# libsvm stops its pairwise coupling at a tolerance that RBFMachine solves exactly: larger
# gaps than this (in the output's unit, or share of a larger output scale) mean a misread
_OUTPUT_TOLERANCE = 1e-2
# kernel values held at once (rows x coalitions x background rows x support vectors)
_BLOCK_VALUES = 2_000_000
# kernel values in single precision (relative error ~1e-7, far below libsvm's coupling
# tolerance): the exp and the products take about a third less time
_KERNEL_DTYPE = np.float32


class SVMScoringExplainer(KernelScoringExplainer):
    """Interventional Shapley values of an RBF ``SVC``/``NuSVC`` (``predict_proba``), a
    ``CalibratedClassifierCV`` around them (sigmoid or isotonic, ``ensemble`` either way)
    or an ``SVR``/``NuSVR`` (``predict``) on a kmeans summary of the training rows,
    computed without calling the model on hybrid rows.

    The RBF kernel ``exp(-gamma ||x - sv||^2)`` is a product over columns. So the kernel
    value of a hybrid row (the coalition's players from ``x``, the others from background
    row ``b``) is the product of ``x``'s factors on the coalition and ``b``'s elsewhere:
    for a batch, one matrix product and one ``exp`` give every coalition's kernel values
    on every background row (``b``'s factors are computed at fit). The model's own head
    (decision values, then Platt scaling and pairwise coupling, or the calibrators of a
    ``CalibratedClassifierCV``) turns them into coalition values,
    and Kernel SHAP's constrained solve into the values, which add up exactly to ``f(x) -
    E[f]``. With ``nsamples >= 2**M - 2`` (8 raw columns: 254) every coalition is
    enumerated: the values are then exact on the background, up to the coupling, which
    libsvm iterates to a tolerance and this solves exactly (see
    :func:`~scoring.model.svm.couple`), and to kernel values in single precision.

    Parameters
    ----------
    explainer, initialization_examples : as in the Azure SDK (see ``ScoringExplainer``).
    n_background : kmeans centroids of the training rows, weighted by cluster size, as
        background (default 20). Latency is linear in it; the values are exact on the
        centroids, so what error remains is the summary of the training rows, which shrinks
        as centroids are added: the default, twice the Azure SDK's 10, trades twice the
        latency for a finer summary.
    nsamples : coalitions, as ``KernelScoringExplainer``; ``"auto"`` is ``2 * M + 2048``.
    model_output, random_state, players : see ``ScoringExplainer``; ``players="auto"``
        plays each raw column's engineered columns as one player.
    """

    method = "svm"
    transient = ("machine_", "background_factors_", "design_")

    def __init__(self, explainer: Any = None, initialization_examples: Any = None, *,
                 n_background: int = 20, nsamples: int | str = "auto",
                 model_output: str | None = None, random_state: int | None = 0,
                 players: str = "auto") -> None:
        super().__init__(explainer, initialization_examples, n_background=n_background,
                         background="kmeans", nsamples=nsamples, model_output=model_output,
                         random_state=random_state, players=players)

    @classmethod
    def unsupported(cls, model: Any, output: str) -> str | None:
        return unsupported_svm(model, output)

    def _fit(self, X: Any) -> None:
        X = np.asarray(X, dtype=float)
        super()._fit(X)  # the background summary, coalition design and expected values
        f = self.spec_.function
        check = X[:_N_CHECK_ROWS]
        outputs = f(check)
        kernel = np.exp(self.machine_.log_factors(check, self.groups_).sum(axis=1))
        gap = float(np.abs(self.machine_.outputs(kernel) - outputs).max())
        if not gap <= _OUTPUT_TOLERANCE * max(1.0, float(np.abs(outputs).max())):
            raise TypeError(f"SVMScoringExplainer misreads {type(self.spec_.model).__name__}: "
                            f"its {f.output} differs from the model's by {gap:.2g} on "
                            "training rows")

    def model_rows_per_row(self) -> int:
        """None: the coalitions are evaluated from kernel factors."""
        return 0

    def _restore(self) -> None:
        """The model's arrays, the background's kernel factors and the coalition design's
        solve (rebuilt when loaded)."""
        super()._restore()
        self.machine_ = rbf_machine(self.spec_.model)
        self.background_factors_ = self.machine_.log_factors(self.background_, self.groups_)

    def _coalition_values(self, X: Any) -> np.ndarray:
        """As Kernel SHAP's, from the kernel factors instead of model calls."""
        X = np.asarray(X, dtype=float)
        base = self.background_factors_  # (B, G, n_sv)
        B, G, S = base.shape
        # log kernel = the background row's own + sum over the coalition's groups of (x's -
        # b's factor): one product with the coalitions, a column of ones adding the first
        Z = np.concatenate([self.coalitions_, np.ones((len(self.coalitions_), 1))], axis=1)
        Z = Z.astype(_KERNEL_DTYPE)
        own = base.sum(axis=1)[:, None, :]  # (B, 1, n_sv)
        n_out = len(np.atleast_1d(self.expected_values_))
        v = np.empty((len(X), len(Z), n_out))
        rows = max(1, _BLOCK_VALUES // (B * S))
        for start in range(0, len(X), rows):
            chunk = slice(start, start + rows)
            shift = self.machine_.log_factors(X[chunk], self.groups_)[:, None] - base[None]
            m = len(shift)
            shift = np.concatenate([shift, np.broadcast_to(own, (m, B, 1, S))], axis=2,
                                   dtype=_KERNEL_DTYPE)
            step = max(1, _BLOCK_VALUES // (m * B * S))
            for k in range(0, len(Z), step):
                # one product per background row: a single large one of this thin shape
                # wakes OpenBLAS's threads, which on a busy machine costs more than it saves
                kernel = np.matmul(Z[k:k + step], shift)  # (m, B, k, n_sv)
                np.exp(kernel, out=kernel)
                v[chunk, k:k + step] = np.einsum("ibko,b->iko", self.machine_.outputs(kernel),
                                                 self.background_weights_)
        return v

    def get_params(self) -> dict:
        params = super().get_params()
        if hasattr(self, "machine_"):
            params["support_vectors"] = len(self.machine_.support_vectors)
        return params
