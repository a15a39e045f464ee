"""The service's own Prometheus metrics (BentoML exports its request metrics itself)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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


def endpoint_label(path: str) -> str:
    """``/explanation/global`` -> ``explanation_global``: one label value per route."""
    return path.strip("/").replace("/", "_") or "root"
