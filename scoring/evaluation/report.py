"""What distill measured, as typed records: each candidate's fidelity and cost, the
verdict on it, and the report of the explainer it shipped."""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from scoring.core.plain import plain


@dataclass(frozen=True)
class Fidelity:
    """A candidate's values against the reference on the held-out rows (at the raw columns
    when the model has transformations). ``reference``: what the reference was."""

    relative_l2_error: float
    top5_precision: float
    top5_sign_agreement: float
    additivity_gap: float
    reference: dict = field(default_factory=dict)

    def line(self) -> str:
        return (f"rel. L2 error {self.relative_l2_error:.3f}, top-5 precision "
                f"{self.top5_precision:.2f}")


@dataclass(frozen=True)
class Cost:
    """What a candidate costs on the request path, on held-out rows.

    Milliseconds are the CPU time of one thread, BLAS included (see
    :mod:`scoring.evaluation.timing`): ``row_ms`` one raw row end to end (validation,
    transformations, model call, values), ``row_given_outputs_ms`` one row given the model
    outputs the service computes anyway (what an explanation adds to a prediction),
    ``batch100_ms`` 100 raw rows (``batch100_extrapolated_from`` rows when slow).
    ``model_rows_per_row``: model evaluations per explained row, which no load moves.
    """

    row_ms: float
    row_given_outputs_ms: float
    batch100_ms: float
    model_rows_per_row: int = 0
    batch100_extrapolated_from: int | None = None

    def line(self) -> str:
        calls = f", {self.model_rows_per_row:,} model rows" if self.model_rows_per_row else ""
        return f"{self.row_given_outputs_ms:.3g} ms/row given the model outputs{calls}"


@dataclass
class Trial:
    """One candidate tried: its label (method and the parameters that tell rungs apart),
    its role (see :class:`~scoring.evaluation.candidates.Candidate`), what was measured
    (or the ``error`` that stopped it), and the verdict: ``"shipped"``, ``"faithful"``
    (met the bounds, not shipped), ``"rejected"`` (``missed`` says what it missed) or
    ``"failed"``. ``speedup``: the bar's time per row given the model outputs over this
    one's (``None`` without a measured bar)."""

    method: str
    label: str
    role: str = ""
    params: dict = field(default_factory=dict)
    fidelity: Fidelity | None = None
    cost: Cost | None = None
    fit_seconds: float = 0.0
    error: str | None = None
    verdict: str = "rejected"
    missed: list[str] = field(default_factory=list)
    speedup: float | None = None

    def line(self) -> str:
        if self.error is not None:
            return f"{self.label}: {self.error}"
        speed = "" if self.speedup is None else \
            f" ({self.speedup:,.0f}x the bar's speed)" if self.speedup >= 10 else \
            f" ({self.speedup:.2g}x the bar's speed)"
        return f"{self.label}: {self.fidelity.line()}, {self.cost.line()}{speed}"

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"method": self.method, "label": self.label,
                               "role": self.role, "verdict": self.verdict}
        if self.error is not None:
            return {**out, "error": self.error}
        return plain({**out, "params": self.params, "fidelity": asdict(self.fidelity),
                      "latency": asdict(self.cost), "fit_seconds": self.fit_seconds,
                      "missed": self.missed, "speedup": self.speedup})

    @classmethod
    def from_dict(cls, payload: dict) -> Trial:
        return cls(method=str(payload.get("method")), label=str(payload.get("label", "")),
                   role=str(payload.get("role", "")), params=dict(payload.get("params") or {}),
                   fidelity=_record(Fidelity, payload.get("fidelity")),
                   cost=_record(Cost, payload.get("latency")),
                   fit_seconds=float(payload.get("fit_seconds") or 0.0),
                   error=payload.get("error"), verdict=str(payload.get("verdict", "")),
                   missed=list(payload.get("missed") or []), speedup=payload.get("speedup"))


@dataclass
class DistillReport:
    """The report :func:`~scoring.distill` attaches to the explainer it returns
    (``explainer.report_``), saved in the bundle and shown by ``GET /metadata``.

    ``method``, ``explainer_class``, ``params``: what shipped; ``fidelity`` and ``cost``
    (``"latency"`` in its JSON) as measured on ``n_held_out_rows`` held-out rows (their
    positions in the training rows: ``held_out_rows``); ``reason``: why it shipped;
    ``tried``: every candidate in the order tried; ``criteria``: the bounds applied;
    ``refit_on_all_rows``: refitted on every training row once chosen.
    """

    method: str
    explainer_class: str
    params: dict
    fidelity: Fidelity
    cost: Cost
    fit_seconds: float
    n_train_rows: int
    n_held_out_rows: int
    reason: str = ""
    tried: list[Trial] = field(default_factory=list)
    criteria: dict = field(default_factory=dict)
    refit_on_all_rows: bool = False
    held_out_rows: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        return plain({
            "method": self.method, "explainer_class": self.explainer_class,
            "params": self.params, "fidelity": asdict(self.fidelity),
            "latency": asdict(self.cost), "fit_seconds": self.fit_seconds,
            "n_train_rows": self.n_train_rows, "n_held_out_rows": self.n_held_out_rows,
            "reason": self.reason, "tried": [t.to_dict() for t in self.tried],
            "criteria": self.criteria, "refit_on_all_rows": self.refit_on_all_rows,
            "held_out_rows": self.held_out_rows})

    @classmethod
    def from_dict(cls, payload: dict) -> DistillReport:
        """The report :meth:`to_dict` wrote (fields it does not know are ignored)."""
        return cls(method=str(payload["method"]),
                   explainer_class=str(payload.get("explainer_class", "")),
                   params=dict(payload.get("params") or {}),
                   fidelity=_record(Fidelity, payload.get("fidelity")),
                   cost=_record(Cost, payload.get("latency")),
                   fit_seconds=float(payload.get("fit_seconds") or 0.0),
                   n_train_rows=int(payload.get("n_train_rows") or 0),
                   n_held_out_rows=int(payload.get("n_held_out_rows") or 0),
                   reason=str(payload.get("reason", "")),
                   tried=[Trial.from_dict(t) for t in payload.get("tried") or []
                          if isinstance(t, dict)],
                   criteria=dict(payload.get("criteria") or {}),
                   refit_on_all_rows=bool(payload.get("refit_on_all_rows")),
                   held_out_rows=[int(i) for i in payload.get("held_out_rows") or []])

    def summary(self) -> str:
        """One line: method, fidelity and cost."""
        return f"{self.method}: {self.fidelity.line()}, {self.cost.line()}"

    def __str__(self) -> str:
        return self.summary()


def _record(cls: type, payload: Any) -> Any:
    """A ``Fidelity`` or ``Cost`` from its JSON; a required number it lacks (reports of
    older versions) is NaN."""
    payload = payload if isinstance(payload, dict) else {}
    return cls(**{f.name: payload.get(f.name, float("nan")) for f in fields(cls)
                  if f.name in payload or (f.default is MISSING
                                           and f.default_factory is MISSING)})


def as_report(value: Any) -> DistillReport | None:
    """A report, or ``None``, from a report or its dict (as stored in a bundle)."""
    if value is None or isinstance(value, DistillReport):
        return value
    return DistillReport.from_dict(value) if value else None
