"""The service's own Prometheus metrics (BentoML exports its request metrics itself)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from scoring.core.explanation import Explanation
from scoring.monitoring.attribution import AttributionMonitor
from service.v2_routes import ROUTE_LABELS

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
                   5, 10)
ROW_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)

PREDICT_SECONDS = Histogram("scoring_predict_seconds", "Model prediction time per request",
                            ["endpoint", "explainer"], buckets=LATENCY_BUCKETS)
EXPLAIN_SECONDS = Histogram("scoring_explain_seconds", "Local explanation time per request",
                            ["endpoint", "explainer"], buckets=LATENCY_BUCKETS)
REQUEST_ROWS = Histogram("scoring_request_rows", "Rows per accepted request", ["endpoint"],
                         buckets=ROW_BUCKETS)
REJECTED = Counter("scoring_rejected_requests_total", "Requests refused with a 4xx",
                   ["endpoint", "reason"])
# attribution monitoring (scoring.monitoring.attribution): share over a window =
# increase(share) / increase(rows), per output and monitored feature. Counters, not a
# histogram of shares: the drift rules need the mean share only, and buckets would
# multiply the series by ~10
ATTRIBUTION_SHARE = Counter(
    "scoring_attribution_share",
    "Sum over explained rows of each feature's share of the row's total |importance|",
    ["output", "feature"])
ATTRIBUTION_ROWS = Counter("scoring_attribution_rows",
                           "Explained rows summed into scoring_attribution_share", ["output"])
# one value per bundle: every worker sets the same one
ATTRIBUTION_REFERENCE = Gauge(
    "scoring_attribution_reference_share",
    "Mean per-row share of each feature on the rows of the bundle's global explanation",
    ["output", "feature"], multiprocess_mode="max")


OTHER_ENDPOINT = "other"


def endpoint_label(route: str | None) -> str:
    """A route of the service -> its ``endpoint`` label: ``/explanation/global`` ->
    ``explanation_global``, a template ``/static_content/{path}`` -> ``static_content``,
    the V2 routes of a model by kind (``/v2/models/{name}/infer`` -> ``v2_infer``); ``None``
    (a path no route serves) -> ``other``. Values come from the fixed set of routes, never
    from the request, so clients cannot add series."""
    if route is None:
        return OTHER_ENDPOINT
    if route in ROUTE_LABELS:
        return ROUTE_LABELS[route]
    return route.partition("/{")[0].strip("/").replace("/", "_") or "root"


class AttributionMetrics:
    """An :class:`AttributionMonitor` as the ``scoring_attribution_*`` series: the reference
    set and every series created (at zero) once, the share sums added per explanation."""

    def __init__(self, monitor: AttributionMonitor) -> None:
        self.monitor = monitor
        # label lookups once, not per request
        self._rows = [ATTRIBUTION_ROWS.labels(output) for output in monitor.outputs]
        self._shares = [[ATTRIBUTION_SHARE.labels(output, label) for label in monitor.labels]
                        for output in monitor.outputs]
        for output, shares in zip(monitor.outputs, monitor.reference_shares.tolist(),
                                  strict=True):
            for label, share in zip(monitor.labels, shares, strict=True):
                ATTRIBUTION_REFERENCE.labels(output, label).set(share)

    def observe(self, explanation: Explanation) -> None:
        sums = self.monitor.share_sums(explanation)
        if sums is None:
            return
        rows, shares = sums
        for counter, n, counters, values in zip(self._rows, rows.tolist(), self._shares,
                                                shares.tolist(), strict=True):
            counter.inc(n)
            for share_counter, value in zip(counters, values, strict=True):
                share_counter.inc(value)
