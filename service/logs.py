"""What the service logs: one WARNING line per refused request (its route, status and
reason, never the input), at most ``REFUSAL_LINES_PER_SECOND`` a second per worker; no
access log unless ``SCORING_ACCESS_LOG=1``; and BentoML's own record of a refusal (an ERROR
with its traceback and pydantic's excerpt of the input) dropped."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Collection, Mapping

from bentoml.exceptions import BentoMLException
from pydantic import ValidationError

# where BentoML's app logs failed requests (bentoml._internal.server.http_app.log_exception)
BENTOML_REQUEST_LOGGER = "bentoml._internal.server.http_app"
# "1" turns BentoML's access log (a line per request) on
ACCESS_LOG = "SCORING_ACCESS_LOG"
logger = logging.getLogger("bentoml.scoring")
# a client sending nothing but bad requests must not write the log as fast as it sends
# them: past this many refusal lines in a second a worker counts the rest and says how many
# in its next line (every refusal is counted in scoring_rejected_requests_total)
REFUSAL_LINES_PER_SECOND = 10


def access_log_enabled() -> bool:
    """BentoML's access log is off unless ``SCORING_ACCESS_LOG=1``: a line per request
    at INFO drowned what matters under load (12,000 lines in one ``make load``)."""
    return os.environ.get(ACCESS_LOG, "0").strip() == "1"


class RefusalLog:
    """WARNING lines for refused requests, at most ``per_second`` in each second; the
    refusals past that are counted and the next line logged says how many there were."""

    def __init__(self, per_second: int = REFUSAL_LINES_PER_SECOND,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = per_second
        self.clock = clock
        self._window = -1.0
        self._lines = 0
        self._unlogged = 0

    def __call__(self, route: str | None, status: int, body: Mapping) -> None:
        """One line for a refused request: its route (one of the service's, never the path
        sent), status, reason and row. Not the message nor the field: they may quote what
        the client sent."""
        now = self.clock()
        if now - self._window >= 1.0:
            self._window, self._lines = now, 0
        if self._lines >= self.per_second:
            self._unlogged += 1
            return
        self._lines += 1
        row = f" (row {body['row']})" if isinstance(body.get("row"), int) else ""
        unlogged = (f" ({self._unlogged} more refused before it, not logged: over "
                    f"{self.per_second} lines a second)" if self._unlogged else "")
        self._unlogged = 0
        logger.warning("refused %s: %d %s%s%s", route or "a request", status, body["reason"],
                       row, unlogged)


refused = RefusalLog()


class BentoMLRefusals(logging.Filter):
    """Drops BentoML's record of a request refused for what the client sent (a body the
    request schemas ``titles`` refuse, a 4xx ``BentoMLException``): the guard logs the
    refusal in its own line (:func:`refused`). Other failures keep their traceback."""

    def __init__(self, titles: Collection[str]) -> None:
        super().__init__()
        self.titles = frozenset(titles)

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, ValidationError):
            return error.title not in self.titles
        return not (isinstance(error, BentoMLException) and error.error_code < 500)


def install(titles: Collection[str]) -> None:
    """:class:`BentoMLRefusals` on BentoML's request logger (once per process)."""
    request_logger = logging.getLogger(BENTOML_REQUEST_LOGGER)
    if not any(isinstance(f, BentoMLRefusals) for f in request_logger.filters):
        request_logger.addFilter(BentoMLRefusals(titles))
