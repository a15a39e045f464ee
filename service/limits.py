"""What one request may cost the service: body bytes, JSON values, read deadlines."""

from __future__ import annotations

import os
from collections.abc import Sequence

from service.lifecycle import logger
from service.schemas import MAX_ROWS

MAX_BODY_BYTES = 8 * 1024 * 1024
# the bytes that open a JSON value or separate two: every value but the first is one of them
VALUE_BYTES = (b"[", b"{", b",")
# a top-level object with its few fields, a table orient's schema
VALUE_SLACK = 1024
# seconds, set for `bentoml serve`: a client slower than this holds a connection no longer
TIMEOUTS = {"SCORING_HEADER_TIMEOUT": 10.0, "SCORING_BODY_TIMEOUT": 30.0}


def json_values(chunk: bytes) -> int:
    """An upper bound of the JSON values ``chunk`` adds to a body: its ``[``, ``{`` and
    ``,`` bytes (those inside strings counted too: only absurd bodies are overcounted past
    a bound)."""
    return sum(chunk.count(b) for b in VALUE_BYTES)


def max_json_values(columns: Sequence[str], categories: dict[str, list]) -> int:
    """The most JSON values a body for a model of these input ``columns`` may hold: twice
    what :data:`MAX_ROWS` rows take in the widest accepted layout (a record repeats every
    column name; one value and one separator per field), the value bytes in the names and
    in the longest category of each categorical column counted per row.

    Parsing is linear in the values: the bound keeps every body's parse short, where the
    byte limit alone let 8 MB of ``[],`` (2.7 million rows) take seconds of the event loop
    before the row limit applied."""
    in_strings = sum(_values_in(name) for name in columns) + sum(
        max((_values_in(str(c)) for c in known), default=0) for known in categories.values())
    return 2 * (MAX_ROWS + 1) * (len(columns) + 2 + in_strings) + VALUE_SLACK


def timeouts() -> dict[str, float]:
    """:data:`TIMEOUTS` with the environment's values; ``RuntimeError`` naming a variable
    that is not a number of seconds in (0, 3600)."""
    out = {}
    for name, default in TIMEOUTS.items():
        text = os.environ.get(name, "").strip()
        try:
            out[name] = float(text) if text else default
        except ValueError:
            out[name] = -1.0
        if not 0 < out[name] < 3600:
            raise RuntimeError(f"{name} must be a number of seconds between 0 and 3600, "
                               f"got {text!r}")
    return out


def check_timeouts() -> None:
    """:func:`timeouts`, or a clean exit with one log line."""
    try:
        timeouts()
    except RuntimeError as exc:
        logger.critical("not serving: %s", exc)
        raise SystemExit(str(exc)) from None


def _values_in(text: str) -> int:
    return json_values(text.encode("utf-8", "backslashreplace"))
