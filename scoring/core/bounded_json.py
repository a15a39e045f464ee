"""JSON read from files someone else may have written: nesting deeper than anything this
library writes is refused as a ``ValueError``, before code that walks it recursively (or
the parser itself) runs out of stack."""

from __future__ import annotations

import json
from typing import Any

# manifests nest about 10 deep, explanations about 5 (docs/security.md)
MAX_JSON_DEPTH = 100


def parse_json(text: str | bytes) -> Any:
    """``json.loads(text)``; ``ValueError`` for invalid JSON or nesting deeper than
    :data:`MAX_JSON_DEPTH`."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    check_depth(value)
    return value


def check_depth(value: Any) -> None:
    """``ValueError`` when lists and objects in ``value`` nest deeper than
    :data:`MAX_JSON_DEPTH` (checked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        stack.extend((child, depth + 1) for child in children)
