"""Refused requests are logged in one line each, at most a few a second per worker."""

from __future__ import annotations

import logging

from service.logs import RefusalLog


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "bentoml.scoring"]


def test_a_flood_of_refusals_writes_a_bounded_number_of_lines(caplog):
    clock = Clock()
    refused = RefusalLog(per_second=10, clock=clock)
    with caplog.at_level(logging.WARNING, logger="bentoml.scoring"):
        for i in range(1000):  # a flood within the same second
            refused("/predict", 400, {"reason": "not_finite", "row": i})
        assert len(_lines(caplog)) == 10
        assert _lines(caplog)[0] == "refused /predict: 400 not_finite (row 0)"
        clock.now += 1.0
        refused(None, 408, {"reason": "header_timeout"})
    lines = _lines(caplog)
    assert len(lines) == 11
    # the first line of the next second says how many went unlogged
    assert lines[-1] == ("refused a request: 408 header_timeout (990 more refused before it, "
                         "not logged: over 10 lines a second)")


def test_refusals_under_the_rate_are_each_logged(caplog):
    clock = Clock()
    refused = RefusalLog(per_second=10, clock=clock)
    with caplog.at_level(logging.WARNING, logger="bentoml.scoring"):
        for _ in range(30):
            refused("/explain", 413, {"reason": "too_large"})
            clock.now += 0.2
    assert _lines(caplog) == ["refused /explain: 413 too_large"] * 30
