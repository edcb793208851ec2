"""The GIL switch interval of a process that runs a Worker or the daemons.

A thread that wants the GIL while another holds it waits up to CPython's
switch interval (``sys.getswitchinterval()``, 5 ms by default) before the
holder is asked to drop it, and a thread that drops it for a system call and
takes it straight back can keep it that long again. A Worker runs a fetcher,
an acker, a heartbeat, a watchdog and a thread per slot; the daemons a
scheduler, a distributor and the main thread: the thread an event (or a due
timer) is waiting on is rarely the one that holds the GIL, and 5 ms of waiting
is the whole of the latency a timer may have (issue 10: p99 <= 5 ms at the
handler's start).

Measured with bench/timerstages.py (6 interleaved rounds of 600 timers on the
loaded 2-core bench machine): p99 at the handler's start 5.5-15.6 ms (median
7.7) at 1 ms against 6.1-97.8 ms (median 16.6) at the default, lower in 5 of
the 6 rounds; 0.2 ms was no better than 1 ms (more forced switches, each a
cost to the thread that had the GIL). See bench/README.md.

Only where no one chose a value: a process that set its own interval keeps it.

``collect_now`` is the other stall a process can have at the wrong moment: the
first full garbage collection after start-up. CPython runs one once ten
middle-generation collections have passed and the objects that survived them
are over a quarter of those a full collection last found, which is always
true of a young process (none found yet). A ``homing daemon`` has had its
ten by the time it has started (imports): its first full collection is the
next middle one away, at whatever moment that falls (with
``bench/timerstages.py``'s instruments allocating, 7.7-8.1 s into the timers
in each of four rounds, 38-52 ms of wall time on the loaded machine, each
round's worst lateness). Run once at start, it finds every module-level
object, and the next one waits for the long-lived objects to grow by a
quarter, which a steady daemon or worker does not do.
"""

from __future__ import annotations

import gc
import logging
import sys

log = logging.getLogger("homing")

SWITCH_S = 0.001
CPYTHON_DEFAULT_S = 0.005


def quicker_switches() -> None:
    """Lower the switch interval to SWITCH_S if it is still CPython's default."""
    if sys.getswitchinterval() == CPYTHON_DEFAULT_S:
        sys.setswitchinterval(SWITCH_S)
        log.debug("GIL switch interval %g s -> %g s (homing.latency)",
                  CPYTHON_DEFAULT_S, SWITCH_S)


_collected = False


def collect_now() -> None:
    """One full garbage collection now, at start, instead of the first one
    falling on a due timer or a ready event later. Once per process: what it
    is for is the young process's first one (a test run starting hundreds of
    workers would pay a full collection each)."""
    global _collected
    if not _collected:
        _collected = True
        gc.collect()
