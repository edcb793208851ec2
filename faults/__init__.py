"""homing's fault suite: a Jepsen-style harness that breaks things and checks the promises.

Every scenario starts its own redis-server, workers and daemons as separate OS
processes (and, for partitions, a TCP proxy), injects a fault, records every
acknowledged enqueue and every delivery outside homing's keys, and classifies
each event afterwards (see ``faults.check``). Run it with ``make faults`` or
``python -m faults --tier quick``; docs/faults.md describes it.

This package must stay cheap to import: ``faults.consumer`` is loaded by every
worker process the suite starts.
"""
