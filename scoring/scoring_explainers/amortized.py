"""Amortized Shapley values: a small network trained offline on noisy unbiased labels."""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from scoring.model.function import ModelFunction
from scoring.model.trees import not_additive, output_dtype
from scoring.scoring_explainers.base import ScoringExplainer
from scoring.shapley.additivity import project_additive
from scoring.shapley.background import sample_background
from scoring.shapley.link import link_values, probability_link
from scoring.shapley.masking import n_players
from scoring.shapley.permutation import permutation_labels
from scoring.shapley.tree_paths import PathEngine

# bounds on n_permutations="auto": below 16 the labels are too noisy for the ensemble to
# use; above 64 the network error, not the label noise, dominates (seed SVC)
_MIN_AUTO_PERMUTATIONS, _MAX_AUTO_PERMUTATIONS = 16, 64


class AmortizedScoringExplainer(ScoringExplainer):
    """A network ``x -> phi(x)`` trained offline, so explaining a row costs one tiny
    forward pass instead of thousands of model calls (FastSHAP, Jethani et al. ICLR 2022;
    stochastic amortization, Covert et al. NeurIPS 2024).

    Fit (offline):

    1. Inputs: the training rows plus ``n_augment`` perturbed copies (Gaussian jitter of
       ``jitter`` standard deviations on the non-binary columns), so the network sees the
       neighbourhood of the data. A small training set (its rows and their copies fewer
       than ``max_label_rows``) has too few distinct rows for that: its inputs are its
       rows and hybrid rows, ``small_set_inputs`` in all, each player (raw column) taken
       from one of two training rows drawn at random. Every value and each raw column's
       engineered columns stay as the data has them, and the labels' budget is spread
       over many more distinct inputs.
    2. Labels: for each input, an unbiased noisy estimate of its interventional Shapley
       values against the background (a uniform sample of up to ``n_background`` training
       rows): ``n_permutations`` permutations in antithetic pairs (a permutation and its
       reverse share one random background row), all inputs evaluated in a few large
       model calls. The labels are projected onto ``sum(phi) = f(x) - E[f]``, which keeps
       them unbiased and lowers their variance.
    3. A scikit-learn ``MLPRegressor`` maps the standardised row and its model output
       ``f(x)`` to standardised labels; regression on unbiased labels averages their noise
       away. With ``f(x)`` as an input the network only learns how the gap
       ``f(x) - E[f]`` splits over features, not the model's own (often sharp) response.

    4. Boosted trees' probabilities (a softmax or logistic of a sum over trees, as in
       histogram and plain gradient boosting classifiers, XGBoost, LightGBM and
       CatBoost): the margin's values are exact
       (:class:`~scoring.shapley.tree_paths.PathEngine`) and carried through the link
       (:func:`~scoring.shapley.link.link_values`); both are inputs of the network, which
       learns only the residual between that base and the labels. The probability game
       is then mostly known, not learned from a few thousand noisy rows.

    Request path: a hand-written numpy forward pass (a few microseconds per row; with a
    margin base, the path engine's lookups first) and an exact projection onto
    ``sum(phi) = f(x) - E[f]``. ``f(x)`` is the model output: pass it
    as ``shap_values(X, outputs)`` when the caller computed it already (the service
    predicts anyway), else the explainer calls the model once for the batch.

    Parameters
    ----------
    explainer, initialization_examples : as in the Azure SDK (see ``ScoringExplainer``).
    n_background : training rows sampled uniformly as background (default 1000).
    n_augment : perturbed copies of each training row added to the inputs (default 4).
    jitter : perturbation scale in standard deviations of each column (default 0.1).
    n_permutations : permutations per input for its label (even), or ``"auto"`` (default):
        as many as fit ``label_budget`` model rows, between 16 and 64; 16 with a margin
        base.
    label_budget : model rows the ``"auto"`` permutations may spend on labels (default
        2,000,000: 30 permutations for the seed's SVC, 2,125 inputs x 30 features). A
        count, not a time, so the same rows give the same explainer on any machine; the
        labels take about as long as the model needs for that many rows.
    max_label_rows : cap on the training rows and jittered copies labelled (default
        6000); model calls scale with it.
    small_set_inputs : inputs of a small training set, its rows and hybrid rows (default
        10,000; 0: the rows and their jittered copies as for a large set).
        ``synthetic_inputs`` in :meth:`get_params` says how many of each kind were
        labelled.
    hidden_layer_sizes, alpha, max_iter : of the ``MLPRegressor`` (default ``(64, 64)``,
        ``1e-4``, ``100``; early stopping after 10 epochs without progress).
    n_networks : networks trained on the same labels from different seeds and averaged
        (default 4): averaging cancels much of each network's own error, and the request
        path evaluates them all in one batched pass.
    margin_base : ``"auto"`` (default): use the exact margin base of step 4 when the
        model's probabilities are a link of margins the path engine reads; ``False``:
        never; ``True``: always, or refuse the model.
    model_output, random_state : see ``ScoringExplainer``.
    players : ``"auto"`` (default): with transformations, one player per raw column (its
        engineered columns switch together in the labels); ``"engineered"``: one per
        engineered column.
    verbose : progress bars of the offline work on stderr.

    Every feature keeps its value (none is zeroed), the values add up exactly to
    ``f(x) - E[f]`` and a binary classifier's two classes get exact negatives.
    """

    method = "amortized"
    plays_raw_columns = True
    transient = ("margin_engine_",)

    def __init__(self, explainer: Any = None, initialization_examples: Any = None, *,
                 n_background: int = 1000, n_augment: int = 4, jitter: float = 0.1,
                 n_permutations: int | str = "auto", label_budget: int = 2_000_000,
                 max_label_rows: int = 6000, small_set_inputs: int = 10_000,
                 hidden_layer_sizes: tuple[int, ...] = (64, 64),
                 alpha: float = 1e-4, max_iter: int = 100, n_networks: int = 4,
                 margin_base: bool | str = "auto", model_output: str | None = None,
                 random_state: int | None = 0, players: str = "auto",
                 verbose: bool = False) -> None:
        self.n_background = n_background
        self.n_augment = n_augment
        self.jitter = jitter
        self.n_permutations = n_permutations
        self.label_budget = label_budget
        self.max_label_rows = max_label_rows
        self.small_set_inputs = small_set_inputs
        self.hidden_layer_sizes = hidden_layer_sizes
        self.alpha = alpha
        self.max_iter = max_iter
        self.n_networks = n_networks
        self.margin_base = margin_base
        self.verbose = verbose
        super().__init__(explainer, initialization_examples, model_output=model_output,
                         random_state=random_state, players=players)

    # -- offline -----------------------------------------------------------------------
    def _fit(self, X: Any) -> None:
        self._check_params()
        X = _numeric(X)
        rng = np.random.default_rng(self.random_state)
        f = self.spec_.function
        self.background_, _ = sample_background(X, self.n_background, rng)
        self.expected_values_ = f(self.background_).mean(axis=0)
        # a binary classifier's two probabilities sum to one: learn the second, mirror the
        # first, so the two classes' values are exact negatives of each other
        self.mirrored_ = bool(self.spec_.function.output == "predict_proba"
                              and len(self.expected_values_) == 2)
        self._fit_margin_base(X)
        inputs = self._inputs(X, rng)
        G = n_players(X, self.groups_)
        self.n_permutations_ = self._permutations(inputs, G)
        started = time.perf_counter()
        with tqdm(total=len(inputs), disable=not self.verbose, unit="row", leave=False,
                  desc=f"[amortized] labels ({self.n_permutations_} permutations)") as bar:
            labels = permutation_labels(f, inputs, self.background_, self.n_permutations_,
                                        rng, progress=bar.update, groups=self.groups_)
        outputs = f(inputs)
        labels = project_additive(self._learned(labels),
                                  self._learned(outputs - self.expected_values_))
        self.label_seconds_ = time.perf_counter() - started
        margins, base = None, 0.0
        if self.link_ is not None:
            with tqdm(total=len(inputs), disable=not self.verbose, unit="row", leave=False,
                      desc="[amortized] exact margin base") as bar:
                parts = []
                for start in range(0, len(inputs), 256):
                    parts.append(self._base(inputs[start:start + 256]))
                    bar.update(len(parts[-1][0]))
            margins, base = (np.concatenate(part) for part in zip(*parts, strict=True))
        labels = labels - base  # the networks learn the residual
        started = time.perf_counter()
        self._train(self._features(inputs, outputs, margins, base), labels)
        self.train_seconds_ = time.perf_counter() - started

    def _inputs(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The rows to label (step 1); ``synthetic_inputs_`` counts them by kind."""
        small = len(X) * (1 + self.n_augment) < self.max_label_rows
        if small and self.small_set_inputs > len(X):
            groups = self.groups_ if self.groups_ is not None else np.arange(X.shape[1])
            n_hybrid = self.small_set_inputs - len(X)
            self.synthetic_inputs_ = {"training_rows": len(X), "hybrid": n_hybrid,
                                      "jittered": 0}
            return np.concatenate([X, hybrid_inputs(X, n_hybrid, groups, rng)])
        inputs = augment_rows(X, self.n_augment, self.jitter, self.max_label_rows, rng)
        self.synthetic_inputs_ = {"training_rows": min(len(X), len(inputs)), "hybrid": 0,
                                  "jittered": max(0, len(inputs) - len(X))}
        return inputs

    def _fit_margin_base(self, X: np.ndarray) -> None:
        """Decide on the margin base (step 4) and build it: ``link_`` is ``None`` without
        one, ``margin_base_note_`` says why."""
        self.link_, self.margin_base_note_ = None, None
        if self.margin_base is False:
            return
        model, output = self.spec_.model, self.spec_.function.output
        why_not = "the explained output is not predict_proba" if output != "predict_proba" \
            else not_additive(model, "decision_function")
        if why_not is None:
            margin = ModelFunction(model, "decision_function")
            check = X[:200]
            # XGBoost computes margins and probabilities in float32
            atol = max(1e-9, 8 * float(np.finfo(output_dtype(model)).eps))
            self.link_ = probability_link(margin(check), self.spec_.function(check), atol)
            if self.link_ is None:
                why_not = "its probabilities are not a softmax or logistic of its margins"
        if why_not is None:
            try:
                self.expected_margin_ = margin(self.background_).mean(axis=0)
                self._restore()
            except TypeError as exc:  # paths too deep for the tables
                self.link_, why_not = None, str(exc)
        if why_not is not None:
            if self.margin_base is True:
                raise TypeError(f"AmortizedScoringExplainer(margin_base=True): {why_not}")
            self.margin_base_note_ = f"no margin base: {why_not}"

    def _restore(self) -> None:
        if getattr(self, "link_", None) is not None:
            groups = self.groups_ if self.groups_ is not None \
                else np.arange(self.background_.shape[1])
            # float32 tables: the base moves by ~1e-7 of the margins, far below what the
            # networks correct, and a row's lookups read half the memory
            self.margin_engine_ = PathEngine.build(self.spec_.model, "decision_function",
                                                   groups, self.background_,
                                                   table_dtype=np.float32)

    def _base(self, X: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | float]:
        """The margin values ``(n, M, n_margins)`` and the learned outputs' base
        ``(n, M, n_learned)`` (zeros without a margin base)."""
        if getattr(self, "link_", None) is None:  # or saved before margin bases
            return None, 0.0
        margins = self.margin_engine_.values(X)
        base = link_values(margins, self.expected_margin_, self.link_)
        return margins, self._learned(base)

    def _features(self, X: np.ndarray, outputs: np.ndarray, margins: np.ndarray | None,
                  base: np.ndarray | float) -> np.ndarray:
        """The networks' inputs: the row, its learned outputs and, with a margin base, the
        margin values and the base."""
        parts = [X, self._learned(outputs)]
        if margins is not None:
            parts += [margins.reshape(len(X), -1), base.reshape(len(X), -1)]
        return np.concatenate(parts, axis=1)

    def _learned(self, values: np.ndarray) -> np.ndarray:
        """The outputs the networks learn: the second class only when mirrored."""
        return values[..., 1:] if self.mirrored_ else values

    def _permutations(self, inputs: np.ndarray, n_players: int) -> int:
        if self.n_permutations != "auto":
            return int(self.n_permutations)
        if self.link_ is not None:
            # the exact base carries most of the values: the residual's labels gain little
            # from more permutations (3-class boosting: 16 and 64 give the same error)
            return _MIN_AUTO_PERMUTATIONS
        fits = self.label_budget // (len(inputs) * n_players)
        return int(min(_MAX_AUTO_PERMUTATIONS, max(_MIN_AUTO_PERMUTATIONS, fits)) // 2 * 2)

    def _check_params(self) -> None:
        if self.margin_base not in ("auto", True, False):
            raise ValueError(f"margin_base must be 'auto', True or False, got "
                             f"{self.margin_base!r}")
        if not isinstance(self.n_networks, (int, np.integer)) or self.n_networks < 1:
            raise ValueError(f"n_networks must be an integer >= 1, got {self.n_networks!r}")
        if not isinstance(self.small_set_inputs, (int, np.integer)) or \
                self.small_set_inputs < 0:
            raise ValueError(f"small_set_inputs must be an integer >= 0, got "
                             f"{self.small_set_inputs!r}")
        for name in ("n_background", "n_permutations", "max_label_rows", "max_iter",
                     "label_budget"):
            value = getattr(self, name)
            if name == "n_permutations" and value == "auto":
                continue
            if not isinstance(value, (int, np.integer)) or value < 2:
                raise ValueError(f"{name} must be an integer >= 2, got {value!r}")
        if self.n_permutations != "auto" and self.n_permutations % 2:
            raise ValueError(f"n_permutations must be even (antithetic pairs), got "
                             f"{self.n_permutations}")
        if not isinstance(self.n_augment, (int, np.integer)) or self.n_augment < 0:
            raise ValueError(f"n_augment must be an integer >= 0, got {self.n_augment!r}")
        if not self.jitter >= 0:
            raise ValueError(f"jitter must be >= 0, got {self.jitter!r}")

    def _train(self, inputs: np.ndarray, labels: np.ndarray) -> None:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPRegressor

        # the model output is an input too (see _features): the network then only learns
        # how the gap f(x) - E[f] splits over features, not the model's own response
        n, M, n_out = labels.shape
        self.x_mean_ = inputs.mean(axis=0)
        x_scale = inputs.std(axis=0)
        self.x_scale_ = np.where(x_scale > 0, x_scale, 1.0)
        # one scale per output (class): the values of one output share a unit
        y_scale = np.sqrt((labels**2).mean(axis=(0, 1)))
        self.y_scale_ = np.where(y_scale > 0, y_scale, 1.0)
        targets = (labels / self.y_scale_).reshape(n, M * n_out)
        self.n_players_ = M
        nets = []
        self.n_iter_ = 0
        for k in tqdm(range(self.n_networks), disable=not self.verbose, leave=False,
                      desc="[amortized] networks", unit="net"):
            seed = None if self.random_state is None else _seed(self.random_state + k)
            net = MLPRegressor(hidden_layer_sizes=tuple(self.hidden_layer_sizes),
                               activation="relu", alpha=self.alpha, batch_size=512,
                               learning_rate_init=1e-3, max_iter=self.max_iter,
                               early_stopping=True, validation_fraction=0.1,
                               n_iter_no_change=10, random_state=seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                net.fit((inputs - self.x_mean_) / self.x_scale_, targets)
            self.n_iter_ += int(net.n_iter_)
            nets.append(net)
        self.n_networks_ = len(nets)
        # plain arrays: the request path needs no sklearn validation; small pickles
        self.networks_ = [self._folded(net) for net in nets]
        self.stacked_ = _stack(self.networks_)

    def _folded(self, net: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Weights with the input standardisation folded into the first layer and the
        output scale (and the ensemble average) into the last."""
        weights = [np.array(w) for w in net.coefs_]
        biases = [np.array(b) for b in net.intercepts_]
        W0 = weights[0] / self.x_scale_[:, None]
        weights[0], biases[0] = W0, biases[0] - self.x_mean_ @ W0
        out_scale = np.tile(self.y_scale_, self.n_players_) / self.n_networks_
        weights[-1] = weights[-1] * out_scale[None, :]  # targets were laid out (M, O)
        biases[-1] = biases[-1] * out_scale
        return [np.ascontiguousarray(w) for w in weights], biases

    # -- request path ------------------------------------------------------------------
    def _shap_values(self, X: Any, outputs: np.ndarray | None) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        if outputs is None:
            outputs = self.spec_.function(X)
        learned = self._learned(outputs)
        margins, base = self._base(X)
        W0, b0, weights, biases = self.stacked_
        # every network at once: the first layers side by side, the others batched
        h = self._features(X, outputs, margins, base) @ W0 + b0  # (n, K * H)
        h = h.reshape(len(X), len(weights[0]), -1).transpose(1, 0, 2)  # (K, n, H)
        for W, b in zip(weights, biases, strict=True):
            np.maximum(h, 0.0, out=h)
            h = np.matmul(h, W) + b
        h = h.sum(axis=0) if len(h) > 1 else h[0]
        phi = h.reshape(len(h), self.n_players_, len(self.y_scale_)) + base
        phi = project_additive(phi, learned - self._learned(self.expected_values_))
        return np.concatenate([-phi, phi], axis=-1) if self.mirrored_ else phi

    def get_params(self) -> dict:
        params = super().get_params()
        params.update(n_background=self.n_background, n_augment=self.n_augment,
                      jitter=self.jitter, n_permutations=self.n_permutations,
                      label_budget=self.label_budget, max_label_rows=self.max_label_rows,
                      small_set_inputs=self.small_set_inputs,
                      hidden_layer_sizes=list(self.hidden_layer_sizes), alpha=self.alpha,
                      max_iter=self.max_iter, n_networks=self.n_networks,
                      margin_base=self.margin_base)
        if hasattr(self, "networks_"):
            params.update(background_rows=len(self.background_), epochs=self.n_iter_,
                          permutations=getattr(self, "n_permutations_", self.n_permutations),
                          labelled_in_seconds=round(self.label_seconds_, 2),
                          trained_in_seconds=round(self.train_seconds_, 2),
                          networks_trained=len(self.networks_),
                          synthetic_inputs=getattr(self, "synthetic_inputs_", None),
                          margin_link=getattr(self, "link_", None)
                          or getattr(self, "margin_base_note_", None))
        return params


def _stack(networks: list) -> tuple[np.ndarray, np.ndarray, list, list]:
    """Equal-shaped networks as one: the first layers' weights side by side ``(inputs,
    K * H)``, each later layer's stacked ``(K, H_in, H_out)`` for batched products."""
    W0 = np.ascontiguousarray(np.concatenate([w[0] for w, _ in networks], axis=1))
    b0 = np.concatenate([b[0] for _, b in networks])
    weights = [np.ascontiguousarray(np.stack([w[i] for w, _ in networks]))
               for i in range(1, len(networks[0][0]))]
    biases = [np.stack([b[i] for _, b in networks])[:, None, :]
              for i in range(1, len(networks[0][1]))]
    return W0, b0, weights, biases


def _numeric(X: Any) -> np.ndarray:
    if isinstance(X, pd.DataFrame):
        non_numeric = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
        if non_numeric:
            raise TypeError(f"AmortizedScoringExplainer needs numeric model inputs; columns "
                            f"{non_numeric[:5]} are not numeric (pass transformations so the "
                            "model input is the engineered numeric matrix)")
    X = np.asarray(X, dtype=float)
    if not np.isfinite(X).all():
        raise ValueError("AmortizedScoringExplainer needs finite training rows (no NaN)")
    return X


def _seed(random_state: int | None) -> int | None:
    return None if random_state is None else int(random_state) % (2**32)


def augment_rows(X: np.ndarray, n_augment: int, jitter: float, max_rows: int,
                 rng: np.random.Generator) -> np.ndarray:
    """The training rows plus ``n_augment`` jittered copies of each, at most ``max_rows``.

    Jitter is Gaussian with ``jitter`` times each column's standard deviation, applied to
    non-binary columns only (one-hot and flag columns keep their values).
    """
    copies = [X]
    if n_augment and jitter > 0:
        scale = X.std(axis=0) * jitter
        binary = np.all((X == 0) | (X == 1), axis=0)
        scale[binary] = 0.0
        base = np.repeat(X, n_augment, axis=0)
        copies.append(base + rng.standard_normal(base.shape) * scale)
    elif n_augment:
        copies.append(np.repeat(X, n_augment, axis=0))
    rows = np.concatenate(copies)
    if len(rows) > max_rows:
        keep = np.concatenate([np.arange(min(len(X), max_rows)),
                               len(X) + rng.permutation(len(rows) - len(X))])[:max_rows]
        rows = rows[np.sort(keep)]
    return rows


def hybrid_inputs(X: np.ndarray, n: int, groups: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """``n`` hybrid rows of ``X``: each player (``groups`` holds the player of each column)
    from one of two rows drawn at random, so a raw column's engineered columns (its one-hot
    block) always come from one real row."""
    first, second = rng.integers(len(X), size=(2, n))
    mask = rng.random((n, int(groups.max()) + 1)) < 0.5
    return np.where(mask[:, groups], X[first], X[second])
