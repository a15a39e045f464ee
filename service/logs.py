"""What the service logs: one WARNING line per refused request (its route, status and
reason, never the input), no access log unless ``SCORING_ACCESS_LOG=1``, and BentoML's own
record of a refusal (an ERROR with its traceback and pydantic's excerpt of the input)
dropped."""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Mapping

from bentoml.exceptions import BentoMLException
from pydantic import ValidationError

# where BentoML's app logs failed requests (bentoml._internal.server.http_app.log_exception)
BENTOML_REQUEST_LOGGER = "bentoml._internal.server.http_app"
# "1" turns BentoML's access log (a line per request) on
ACCESS_LOG = "SCORING_ACCESS_LOG"
logger = logging.getLogger("bentoml.scoring")


def access_log_enabled() -> bool:
    """BentoML's access log is off unless ``SCORING_ACCESS_LOG=1``: a line per request
    at INFO drowned what matters under load (12,000 lines in one ``make load``)."""
    return os.environ.get(ACCESS_LOG, "0").strip() == "1"


def refused(route: str | None, status: int, body: Mapping) -> None:
    """One WARNING line for a refused request: its route (one of the service's, never the
    path sent), status, reason and row. Not the message nor the field: they may quote what
    the client sent."""
    row = f" (row {body['row']})" if isinstance(body.get("row"), int) else ""
    logger.warning("refused %s: %d %s%s", route or "a request", status, body["reason"], row)


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
