"""What distill measured: the chosen explainer's fidelity and latency, and every try."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from scoring.plain import plain


@dataclass
class DistillReport:
    """The report :func:`~scoring.distill` attaches to the explainer it returns
    (``explainer.report_``), saved in the bundle and shown by ``GET /metadata``.

    ``fidelity``: ``relative_l2_error``, ``top5_precision``, ``top5_sign_agreement``,
    ``additivity_gap`` and the ``reference`` they were measured against; ``latency``:
    ``row_ms``, ``row_given_outputs_ms``, ``batch100_ms``; ``tried``: one entry per
    candidate (its fidelity and latency, what it missed, or why it could not run);
    ``criteria``: the bounds applied; ``held_out_rows``: the positions in the training
    rows of the held-out rows fidelity and latency were measured on.
    """

    method: str
    explainer_class: str
    params: dict
    fidelity: dict
    latency: dict
    fit_seconds: float
    n_train_rows: int
    n_held_out_rows: int
    tried: list[dict] = field(default_factory=list)
    criteria: dict = field(default_factory=dict)
    refit_on_all_rows: bool = False
    held_out_rows: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        return plain(asdict(self))

    @classmethod
    def from_dict(cls, payload: dict) -> DistillReport:
        return cls(**{k: v for k, v in payload.items() if k in cls.__dataclass_fields__})

    def summary(self) -> str:
        """One line: method, fidelity and latency."""
        return f"{self.method}: {fidelity_line(self.fidelity, self.latency)}"

    def __str__(self) -> str:
        return self.summary()


def fidelity_line(fidelity: dict, latency: dict) -> str:
    """Relative L2 error, top-5 precision, additivity gap and latency in one line."""
    nan = float("nan")
    return (f"rel. L2 error {fidelity.get('relative_l2_error', nan):.3f}, "
            f"top-5 precision {fidelity.get('top5_precision', nan):.2f}, additivity gap "
            f"{fidelity.get('additivity_gap', nan):.1e}, {latency.get('row_ms', nan):.3f} "
            f"ms/row, {latency.get('batch100_ms', nan):.1f} ms/100 rows")


def as_report(value: Any) -> DistillReport | None:
    """A report, or ``None``, from a report or its dict (as stored in a bundle)."""
    if value is None or isinstance(value, DistillReport):
        return value
    return DistillReport.from_dict(value) if value else None
