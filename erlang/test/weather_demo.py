"""The Python half of the weather test (erlang/test/weather_tests.erl): the demo's site
and producer, with the daemons, for an Erlang weather consumer to work against.

``weather_demo.py URL PREFIX SECONDS``: serves the demo's WeatherSite on a free port and
prints its URL, runs the demo's Weatherman (reports, and forecasts by create_timer) for
SECONDS, then waits until every event it sent was posted to the site by the consumer,
and prints ``delivered N of N``; exit 1 if any is missing after 30 s.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid

from homing import Client
from homing.daemons import Distributor, Scheduler
from homing.demo.site import WeatherSite
from homing.demo.weatherman import Weatherman


def main() -> int:
    url, prefix, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    client = Client.from_url(url, prefix=prefix)
    run = uuid.uuid4().hex[:8]
    site = WeatherSite("127.0.0.1", 0, run).start()
    print(f"site {site.url}", flush=True)
    stop_daemons, stop_producing = threading.Event(), threading.Event()
    threads = [threading.Thread(target=d.run, args=(stop_daemons,), daemon=True)
               for d in (Scheduler(client), Distributor(client))]
    weatherman = Weatherman(client, run, 40, forecast_every=4, forecast_delay_ms=300, seed=7)
    producer = threading.Thread(target=weatherman.run, args=(stop_producing,), daemon=True)
    for t in [*threads, producer]:
        t.start()
    time.sleep(seconds)
    stop_producing.set()
    producer.join()
    sent = weatherman.sent
    end = time.monotonic() + 30
    while site.delivered(sent) < len(sent) and time.monotonic() < end:
        time.sleep(0.05)
    got = site.delivered(sent)
    snap = site.snapshot()
    stop_daemons.set()
    site.stop()
    print(f"first {sent[0]}", flush=True)
    print(f"delivered {got} of {len(sent)}; forecasts {len(weatherman.forecasts)}; "
          f"cities {len(snap['reports'])}; stale {snap['stale']}", flush=True)
    return 0 if got == len(sent) and weatherman.forecasts else 1


if __name__ == "__main__":
    sys.exit(main())
