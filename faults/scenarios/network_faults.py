"""A partition of both ports' workers: ``homing worker`` (Python) and the JS worker.

Each cut worker has its own proxy, so the proxy's records say which client
noticed its dead connection (a socket timeout or a health check closing it, or
a new connection attempt) and when. The partition outlasts the documented
bound (a dead connection is noticed within ~10 s), so a worker that never
notices is caught.
"""

from __future__ import annotations

import time

from ..harness import Run

PARTITION_S = 14.0


def partition_both(run: Run) -> None:
    """A 14 s partition (our proxies) between Redis and two workers, one per port: each
    must notice its dead connection before the link heals, and start nothing late."""
    via_py, via_js = run.start_proxy(), run.start_proxy()
    run.preload([{"w": 20}] * 600, tag="b")  # a backlog: the cut workers' windows are full
    run.daemon()
    cut = {"python": run.worker(concurrency=2, prefetch=50, url=via_py)}
    js = run.js_worker(concurrency=2, prefetch=50, url=via_js)
    if js is not None:
        cut["js"] = js
    run.worker(concurrency=2, prefetch=50)
    run.producer("p", rate=100, payload=lambda n: {"w": 20})
    run.wait(2.5)  # node starts slower than Python
    for proc in cut.values():
        if not run.mid_event(proc):
            run.notes.append(f"{proc.name} was between events at the cut")
    t0 = time.time()
    for proxy in run.proxies:
        proxy.partition()
    run.wait(PARTITION_S)
    t1 = time.time()
    for proxy in run.proxies:
        proxy.heal()
    run.fault("partition", t0, {p.pid for p in cut.values()})
    for (port, proc), proxy in zip(cut.items(), run.proxies, strict=False):
        took = proxy.noticed(t0, t1)
        if took is None:
            run.problems.append(f"the {port} worker ({proc.name}) never noticed its dead "
                                f"connection in a {PARTITION_S:.0f} s partition")
        else:
            run.notes.append(f"the {port} worker noticed its dead connection after {took} s")
    run.wait(3.0)
    run.drain(40)
    run.producer_errors()  # the producers' own link was never cut
