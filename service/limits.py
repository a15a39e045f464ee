"""What one request may cost the service: body bytes, JSON values, read deadlines."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from service.schemas import MAX_ROWS

MAX_BODY_BYTES = 8 * 1024 * 1024
# a body's own fields, a table orient's schema
JSON_SLACK = 1024
# seconds, set for `bentoml serve`: a client slower than this holds a connection no longer
TIMEOUTS = {"SCORING_HEADER_TIMEOUT": 10.0, "SCORING_BODY_TIMEOUT": 30.0}


@dataclass(frozen=True)
class JsonCounts:
    """Upper bounds of a JSON text's values and, among them, of its arrays and objects (the
    values the garbage collector tracks): every value but the first opens a container
    (``[``, ``{``) or follows a ``,``. Bytes inside strings are counted too: only absurd
    bodies are overcounted past a budget."""

    values: int = 0
    containers: int = 0

    @classmethod
    def of(cls, chunk: bytes) -> JsonCounts:
        containers = chunk.count(b"[") + chunk.count(b"{")
        return cls(containers + chunk.count(b","), containers)

    def __add__(self, other: JsonCounts) -> JsonCounts:
        return JsonCounts(self.values + other.values, self.containers + other.containers)

    def within(self, budget: JsonCounts) -> bool:
        return self.values <= budget.values and self.containers <= budget.containers


def json_budget(columns: Sequence[str], categories: dict[str, list]) -> JsonCounts:
    """The most JSON values and containers a body for a model of these input ``columns``
    may hold: :data:`MAX_ROWS` + 1 rows in the widest accepted layout (one container, one
    value and one separator per field, a record or a table row repeating every column's
    name: the punctuation in the names and in the longest category of each categorical
    column counts per row), a table orient's schema (4 per column, each category) and
    :data:`JSON_SLACK`.

    Parsing is linear in the values and each container is an object the garbage collector
    walks: the budget keeps every body's parse short, where the byte limit alone let 8 MB of
    ``[],`` (2.7 million rows) take seconds of the event loop before the row limit applied."""
    in_strings = sum((JsonCounts.of(_text(name)) for name in columns), JsonCounts())
    for known in categories.values():
        counts = [JsonCounts.of(_text(str(c))) for c in known]
        in_strings += JsonCounts(max((c.values for c in counts), default=0),
                                 max((c.containers for c in counts), default=0))
    schema = 4 * len(columns) + sum(len(known) for known in categories.values()) + JSON_SLACK
    return JsonCounts((MAX_ROWS + 1) * (len(columns) + 2 + in_strings.values) + schema,
                      (MAX_ROWS + 1) * (1 + in_strings.containers) + schema)


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


def _text(text: str) -> bytes:
    return text.encode("utf-8", "backslashreplace")


def tensor_budget(budget: JsonCounts) -> JsonCounts:
    """The budget of a V2 inference body for a model whose ``/predict`` bodies have
    ``budget``: the protocol lets tensors nest their data, down to one array per value (a
    ``[n, 1]`` column written ``[[v], [v], ...]``), which doubles the values and makes as
    many arrays."""
    return JsonCounts(2 * budget.values, budget.values)
