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


def figures_table(figures: list[Any]) -> str:
    """Memory, flatness, timers, idle daemon cost: the figures that are not rates per round."""
    lines = [f"{'figure':<62} {'value':>10}  goal", "-" * 86]
    for f in figures:
        lines.append(f"{f.label[:62]:<62} {_num(f.value, ',.1f', ' ' + f.unit):>10}  {f.goal}")
    return "\n".join(lines)


# (what, row, against, op, bound): a row's rate over another's, or a row's own figure.
GOALS: list[tuple[str, str, str | None, str, float]] = [
    ("single enqueue / redis-py EVALSHA floor", "enqueue_one", "evalsha_floor", ">=", 0.8),
    ("single enqueue / BullMQ Node add", "enqueue_one", "bullmq_add", ">=", 2.0),
    # The same call from homing's JS client: both sides on Node, so the ratio
    # is the scripts and the clients' send paths, not Python against Node.
    ("JS single enqueue / BullMQ Node add", "js_enqueue_one", "bullmq_add", ">=", 2.0),
    ("single enqueue: Redis us per call", "enqueue_one", None, "<=", 20.0),
    ("enqueue_many x1000 / leased design x1000", "enqueue_many_1000", "leased_enqueue_1000",
     ">=", 0.9),
    ("Python Worker c=1 / leased drain", "e2e_worker_c1", "leased_drain", ">=", 0.7),
    ("Python Worker c=10 / leased drain", "e2e_worker_c10", "leased_drain", ">=", 0.7),
    ("JS Worker c=1 / leased drain", "js_e2e_worker_c1", "leased_drain", ">=", 0.7),
    ("JS Worker c=10 / leased drain", "js_e2e_worker_c10", "leased_drain", ">=", 0.7),
    # The same design sent from node-redis (bench/js/run.mjs): the floor from the JS
    # worker's own client library, as the single enqueue's is redis-py's.
    ("JS Worker c=1 / leased drain from node-redis", "js_e2e_worker_c1", "js_e2e_leased_drain",
     ">=", 0.7),
    ("JS Worker c=10 / leased drain from node-redis", "js_e2e_worker_c10", "js_e2e_leased_drain",
     ">=", 0.7),
    ("Python Worker c=1 / its bare loop", "e2e_worker_c1", "e2e_client_loop", ">=", 0.9),
    ("JS Worker c=1 / its bare loop", "js_e2e_worker_c1", "js_e2e_client_loop", ">=", 0.9),
    ("JS Worker c=10 / its bare loop", "js_e2e_worker_c10", "js_e2e_client_loop", ">=", 0.9),
    ("JS Worker c=10 / BullMQ Node Worker c=10", "js_e2e_worker_c10", "bullmq_e2e_c10", ">=", 1.0),
]


def _ratio(a: Summary, b: Summary) -> float:
    """Paired per round when both ran in the same rounds (the Python rounds, or
    bench/js/run.mjs's, which interleave its cases too), else the ratio of medians."""
    if a.source == b.source and len(a.rates) == len(b.rates):
        return statistics.median(x / y for x, y in zip(a.rates, b.rates, strict=True) if y)
    return a.median / b.median


def goals(rows: list[Summary], figures: list[Any]) -> list[dict[str, Any]]:
    """Each goal of issue 10 that this run measured: its value and whether it is met."""
    by = {r.name: r for r in rows}
    out = []
    for what, name, against, op, bound in GOALS:
        row = by.get(name)
        if row is None or (against is not None and against not in by):
            value = None
        elif against is None:
            value = row.redis_us_per_call
        else:
            value = _ratio(row, by[against])
        met = None if value is None else (value >= bound if op == ">=" else value <= bound)
        out.append({"goal": what, "value": value, "bound": f"{op} {bound:g}", "met": met})
    for f in figures:
        if f.goal:
            out.append({"goal": f.label, "value": f.value, "bound": f.goal, "met": f.met})
    return out


def goals_table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'goal (issue 10)':<62} {'value':>8} {'bound':>10}  met", "-" * 88]
    for g in rows:
        met = {True: "yes", False: "NO", None: "-"}[g["met"]]
        lines.append(f"{g['goal'][:62]:<62} {_num(g['value'], '.2f'):>8} {g['bound']:>10}  {met}")
    return "\n".join(lines)


def write_json(path: Path, meta: dict[str, Any], rows: list[Summary],
               figures: list[Any] | None = None, goals: list[dict[str, Any]] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {**meta, "results": [r.to_json() for r in rows],
           "figures": [f.to_json() for f in figures or []], "goals": goals or []}
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
