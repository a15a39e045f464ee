"""numpy and pandas values to plain Python values, the types JSON and YAML take."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def plain(value: Any, *, finite: bool = False) -> Any:
    """``value`` with arrays, numpy scalars, tuples and dict keys turned into lists, Python
    scalars and strings, recursively. With ``finite=True`` NaN and infinities become
    ``None`` (JSON has no such numbers)."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, dict):
        return {str(k): plain(v, finite=finite) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, finite=finite) for v in value]
    if finite and isinstance(value, float) and not math.isfinite(value):
        return None
    return value
