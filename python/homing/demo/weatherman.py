"""The weatherman: the demo's producer.

He enqueues weather reports to the ``weather`` service at a steady rate and, every few
reports, schedules a forecast for that city with ``create_timer`` (it becomes ready a few
seconds later, by the Redis clock). Every event he sends is remembered, so the demo can
check at the end that each one reached the site.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any

from ..client import Client
from ..errors import ConnectionLostError

log = logging.getLogger("homing.demo")
SERVICE = "weather"
# A plausible late-November temperature (°C) per city, so the site reads like weather.
CLIMATE = {"Amsterdam": 7.0, "Oslo": -1.0, "Lisbon": 14.0, "Nairobi": 22.0, "Lima": 19.0,
           "Sapporo": 3.0, "Hobart": 15.0, "Reykjavik": 0.0}
CITIES = tuple(CLIMATE)
SKIES = ("sunny", "cloudy", "rain", "showers", "fog", "wind")


class Weatherman:
    """Produce ``rate`` reports per second until ``stop`` is set."""

    def __init__(self, client: Client, run: str, rate: float, *, forecast_every: int = 5,
                 forecast_delay_ms: int = 3000, seed: int | None = None) -> None:
        self.client = client
        self.run_id = run
        self.rate = rate
        self.forecast_every = forecast_every
        self.forecast_delay_ms = forecast_delay_ms
        self.rng = random.Random(seed)
        self.temps = {city: base + self.rng.uniform(-2, 2) for city, base in CLIMATE.items()}
        self.reports: dict[int, str] = {}  # seq -> event id
        self.forecasts: dict[int, str] = {}  # seq of the report it follows -> timer id
        self.seq = 0

    @property
    def sent(self) -> list[str]:
        """Ids of every event sent so far (read it once the weatherman stopped)."""
        return [*self.reports.values(), *self.forecasts.values()]

    def _report(self) -> dict[str, Any]:
        self.seq += 1
        city = CITIES[self.seq % len(CITIES)]
        # A random walk that drifts back to the city's climate.
        self.temps[city] += self.rng.uniform(-1.0, 1.0) + (CLIMATE[city] - self.temps[city]) / 5
        return {"kind": "report", "run": self.run_id, "city": city, "seq": self.seq,
                "temp_c": round(self.temps[city], 1), "time": time.strftime("%H:%M:%S")}

    def _forecast(self, report: dict[str, Any]) -> dict[str, Any]:
        sky = "snow" if report["temp_c"] < 1 and self.rng.random() < 0.5 else self.rng.choice(SKIES)
        return {"kind": "forecast", "run": self.run_id, "city": report["city"],
                "seq": report["seq"], "time": report["time"],
                # When the timer was set: the page shows how long after it the forecast came.
                "reported_at": round(time.time(), 3),
                "text": f"{sky}, around {round(report['temp_c'] + self.rng.uniform(-3, 3))} °C"}

    def run(self, stop: threading.Event) -> None:
        """Send what is due at ``rate``; batches keep up when the rate outruns round trips."""
        start = time.monotonic()
        batch: list[dict[str, Any]] = []
        while not stop.is_set():
            if not batch:
                due = int((time.monotonic() - start) * self.rate) + 1 - self.seq
                if due <= 0:
                    stop.wait(min(0.05, 1 / self.rate))
                    continue
                batch = [self._report() for _ in range(min(due, 100))]
            try:
                self._send(batch)
                batch = []
            except ConnectionLostError as exc:  # Redis restarting: send the same batch again
                log.warning("weatherman: %s", exc)
                stop.wait(0.5)

    def _send(self, reports: list[dict[str, Any]]) -> None:
        # Idempotency keys make sending a batch again after a lost reply safe: the repeat
        # returns the first ids instead of enqueueing the reports twice.
        keys = [f"{self.run_id}-report-{r['seq']}" for r in reports]
        ids = self.client.enqueue_many(SERVICE, reports, keys=keys)
        self.reports.update((r["seq"], i) for r, i in zip(reports, ids, strict=True))
        for r in reports:
            if r["seq"] % self.forecast_every == 0 and r["seq"] not in self.forecasts:
                self.forecasts[r["seq"]] = self.client.create_timer(
                    SERVICE, self._forecast(r), delay_ms=self.forecast_delay_ms,
                    key=f"{self.run_id}-forecast-{r['seq']}")
