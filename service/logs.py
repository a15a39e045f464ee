"""BentoML logs each request it refuses as an ERROR with its traceback, a refused body with
pydantic's excerpt of the input: one INFO line instead, naming the error kinds only."""

from __future__ import annotations

import logging
from collections.abc import Collection

from bentoml.exceptions import BentoMLException
from pydantic import ValidationError

# where BentoML's app logs failed requests (bentoml._internal.server.http_app.log_exception)
BENTOML_REQUEST_LOGGER = "bentoml._internal.server.http_app"


class RefusedRequestLines(logging.Filter):
    """Rewrites BentoML's record of a request refused for what the client sent (a body the
    request schemas ``titles`` refuse, a 4xx ``BentoMLException``) into one INFO line;
    other failures keep their traceback."""

    def __init__(self, titles: Collection[str]) -> None:
        super().__init__()
        self.titles = frozenset(titles)

    def filter(self, record: logging.LogRecord) -> bool:
        summary = self._summary(record.exc_info[1] if record.exc_info else None)
        if summary is not None:
            record.msg, record.args = "%s: refused, %s", (record.getMessage(), summary)
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info = record.exc_text = None
        return True

    def _summary(self, error: BaseException | None) -> str | None:
        if isinstance(error, ValidationError) and error.title in self.titles:
            kinds = sorted({detail["type"] for detail in error.errors(include_input=False)})
            return f"{error.error_count()} validation error(s) of the body: {', '.join(kinds)}"
        if isinstance(error, BentoMLException) and error.error_code < 500:
            return f"{type(error).__name__} {int(error.error_code)}"
        return None


def install(titles: Collection[str]) -> None:
    """:class:`RefusedRequestLines` on BentoML's request logger (once per process)."""
    logger = logging.getLogger(BENTOML_REQUEST_LOGGER)
    if not any(isinstance(f, RefusedRequestLines) for f in logger.filters):
        logger.addFilter(RefusedRequestLines(titles))
