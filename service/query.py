"""Integer query parameters: one rule for every route."""

from __future__ import annotations

import re

_INTEGER = re.compile(r"[0-9]{1,9}")


def query_integer(text: str) -> int | None:
    """``text`` as a non-negative integer when it is 1 to 9 ASCII digits, else ``None``
    (``str.isdigit`` also takes ``¹``, ``①`` and ``３``: ``int`` refuses the first two and
    reads the last as 3)."""
    return int(text) if _INTEGER.fullmatch(text) else None
