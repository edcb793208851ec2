"""Summaries of the samples: medians, spread, ratios to the baseline, the table and the JSON.

Ratios are what to compare across machines and runs: the baseline runs in
the same process against the same Redis, in the same rounds as every homing
case, so machine noise moves both. Each round's case rate is divided by that
round's baseline rate and the median of those ratios is reported.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from measure import Sample


@dataclass
class Summary:
    """One table row: a case's rates over its repetitions, and how they compare."""

    name: str
    label: str
    events: int
    rates: list[float]
    ratios: list[float] = field(default_factory=list)
    source: str = "python"
    redis_us_per_event: float | None = None
    redis_us_per_call: float | None = None
    redis_cpu_pct: float | None = None
    client_cpu_pct: float | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.rates)

    @property
    def spread_pct(self) -> float:
        """Half the min-max range, in percent of the median."""
        return 50 * (max(self.rates) - min(self.rates)) / self.median if self.median else 0.0

    @property
    def ratio(self) -> float | None:
        return statistics.median(self.ratios) if self.ratios else None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(median=self.median, min=min(self.rates), max=max(self.rates),
                   spread_pct=self.spread_pct, ratio=self.ratio)
        return out


def summarize(name: str, label: str, samples: list[Sample], baseline: list[Sample]) -> Summary:
    """Combine one case's samples; ``baseline`` holds the same rounds' baseline samples."""
    med = statistics.median
    per_call = [s.redis_usec() / calls for s in samples
                if (calls := sum(c["calls"] for c in s.commands.values()))]
    return Summary(
        name=name,
        label=label,
        events=samples[0].events,
        rates=[s.rate for s in samples],
        ratios=[s.rate / b.rate for s, b in zip(samples, baseline, strict=True) if b.rate],
        redis_us_per_event=med(s.redis_usec() / s.events for s in samples),
        redis_us_per_call=med(per_call) if per_call else None,
        redis_cpu_pct=med(100 * s.redis_cpu / s.seconds for s in samples),
        client_cpu_pct=med(100 * s.client_cpu / s.seconds for s in samples),
    )


def _num(v: float | None, fmt: str, unit: str = "") -> str:
    return "-" if v is None else format(v, fmt) + unit


def table(rows: list[Summary]) -> str:
    """A plain-text table; the µs and CPU columns say where each event's time went."""
    head = (f"{'case':<46} {'events':>7} {'events/s':>9} {'spread':>7} {'vs base':>7} "
            f"{'redis us/ev':>11} {'us/call':>8} {'redis cpu':>9} {'py cpu':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.label[:46]:<46} {r.events:>7} {r.median:>9,.0f}"
            f" {'±' + _num(r.spread_pct, '.0f', '%'):>7} {_num(r.ratio, '.2f'):>7}"
            f" {_num(r.redis_us_per_event, '.1f'):>11} {_num(r.redis_us_per_call, '.1f'):>8}"
            f" {_num(r.redis_cpu_pct, '.0f', '%'):>9} {_num(r.client_cpu_pct, '.0f', '%'):>7}")
    return "\n".join(lines)


def write_json(path: Path, meta: dict[str, Any], rows: list[Summary]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {**meta, "results": [r.to_json() for r in rows]}
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
