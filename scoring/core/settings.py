"""Integer settings an operator gives in the environment: read one way, refused one way."""

from __future__ import annotations

import os
import re


def integer_setting(name: str, meaning: str, *, minimum: int = 1,
                    digits: int = 9) -> int | None:
    """The environment variable ``name`` as an integer, ``None`` when unset or blank. Any
    value that is not at most ``digits`` ASCII digits worth ``minimum`` (1 or 0) or more is
    a ``RuntimeError``: ``"<name> must be a positive (non-negative) integer (<meaning>),
    got '<value>'"``."""
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    # ASCII digits only: str.isdigit also takes "³", which int() then refuses
    if not re.fullmatch(f"[0-9]{{1,{digits}}}", value) or int(value) < minimum:
        kind = "positive" if minimum == 1 else "non-negative"
        raise RuntimeError(f"{name} must be a {kind} integer ({meaning}), got "
                           f"{value[:40]!r}")
    return int(value)
