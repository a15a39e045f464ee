"""Which types a skops model file may hold, and who decides: a fixed allow-list of classes,
plus the types the operator names (an argument, ``--trusted-types``,
``SCORING_TRUSTED_TYPES``, or a manifest whose signature was verified with the operator's
``SCORING_SIGNING_KEY``). The file never vouches for itself: a type listed in an unsigned
manifest is only a record of what the saver named."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

from scoring.artifacts.archive import ArrayArchive
from scoring.artifacts.tree_checks import check_trees
from scoring.core.codec import StateError

TRUSTED_TYPES_ENV = "SCORING_TRUSTED_TYPES"

# Beyond what skops trusts by default (scikit-learn's estimators and its loss, link and
# binning internals, numpy arrays, dtypes, ufuncs and random generators, scipy's sparse
# matrices, Python's plain containers), the classes our saved models hold. Classes only,
# never functions: skops builds some nodes by calling the type they name, so a trusted
# function would run with the file's arguments.
ALLOWED_TYPES = frozenset({
    # the fitted trees of decision trees, forests, gradient boosting and histogram gradient
    # boosting; skops leaves them out because scikit-learn follows their indices unchecked:
    # every one is checked after loading, before the model runs (tree_checks)
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    # CalibratedClassifierCV's fitted parts (the demo's model): plain holders of an
    # estimator and its calibrators, and the sigmoid calibrator's two numbers
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    # MLPClassifier and MLPRegressor's optimizer state (solvers "adam" and "sgd")
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    # ColumnTransformer's columns chosen by dtype (scoring.datasets.preprocessor)
    "sklearn.compose._column_transformer.make_column_selector",
    # the dtype an imputer records at fit time
    "numpy.dtype",
    # the ordered dict estimators keep parameters in (LightGBM's)
    "collections.OrderedDict",
})


def operator_trusted_types(trusted_types: Iterable[str] = ()) -> set[str]:
    """The types the operator trusts beyond :data:`ALLOWED_TYPES`: ``trusted_types`` and
    those ``SCORING_TRUSTED_TYPES`` names (separated by commas or spaces)."""
    if isinstance(trusted_types, str):
        raise TypeError("trusted_types must be a list of type names, not one string")
    named = set(trusted_types)
    return named | {t for t in re.split(r"[,\s]+", os.environ.get(TRUSTED_TYPES_ENV, "")) if t}


class UntrustedTypes(TypeError):
    """A model holds ``types`` outside :data:`ALLOWED_TYPES` that the saver did not name."""

    def __init__(self, types: list[str]) -> None:
        self.types = types
        super().__init__(f"the model holds types outside the allow-list: {types}; pass "
                         f"trusted_types={types!r} to save it if you trust who wrote it "
                         "(loading it will need them named again: trusted_types=, "
                         f"{TRUSTED_TYPES_ENV}, or a signed bundle)")


def dump_model(obj: Any, trusted_types: Iterable[str] = ()) -> tuple[bytes, list[str]]:
    """``obj`` as skops bytes and the types outside :data:`ALLOWED_TYPES` it needs (each
    must be in ``trusted_types``, else :class:`UntrustedTypes` naming them; ``TypeError``
    when skops cannot store it at all)."""
    import skops.io as sio

    try:
        data = sio.dumps(obj)
    except Exception as exc:  # skops raises many types for objects it cannot store
        raise TypeError(f"skops cannot store this model ({type(exc).__name__}: {exc}); pass "
                        "allow_pickle=True to save it as a pickle, which runs code when "
                        "loaded (only for models you trust)") from None
    needed = sorted(t for t in sio.get_untrusted_types(data=data) if t not in ALLOWED_TYPES)
    unlisted = [t for t in needed if t not in set(trusted_types)]
    if unlisted:
        raise UntrustedTypes(unlisted)
    return data, needed


def check_storable(obj: Any, trusted_types: Iterable[str] = ()) -> None:
    """Raise what :func:`dump_model` would, before any work depends on saving ``obj``."""
    dump_model(obj, trusted_types)


def load_model(data: bytes, trusted_types: Iterable[str], label: str) -> Any:
    """The objects of a skops model file whose every type is on :data:`ALLOWED_TYPES` or in
    ``trusted_types`` (checked with skops' own audit before anything is built), and whose
    trees have the structure of fitted ones; :class:`StateError` naming what is not."""
    import skops.io as sio

    where = f"{label}: the model file (model.skops)"
    try:
        ArrayArchive(data).check_all()  # bounded sizes before skops reads entries whole
        types = sio.get_untrusted_types(data=data)
    except Exception as exc:  # a hostile file may break skops' parser anywhere
        raise StateError(f"{where} is not a readable skops file (truncated or damaged?): "
                         f"{type(exc).__name__}: {exc}") from None
    trusted = set(trusted_types)
    refused = sorted(t for t in types if t not in ALLOWED_TYPES and t not in trusted)
    if refused:
        raise StateError(f"{where} holds type(s) {refused}, which are not on the allow-list; "
                         "refusing to load it. If you trust who wrote it, name them: "
                         f"trusted_types=[...], --trusted-types, {TRUSTED_TYPES_ENV}, or "
                         "save the bundle signed with SCORING_SIGNING_KEY")
    try:
        models = sio.loads(data, trusted=sorted(types))
    except Exception as exc:
        raise StateError(f"{where} cannot be loaded: {type(exc).__name__}: {exc}") from None
    try:
        check_trees(models)
    except Exception as exc:  # attributes of a crafted model may fail in any way
        raise StateError(f"{where} is damaged or crafted: {exc}") from None
    return models
