#!/usr/bin/env python3
"""Redis time per call of homing's hot scripts, beside the minimal leased design.

Why a bench of its own: the rates of ``run.py`` mix client CPU, the network
and Redis. This one asks Redis alone (``INFO commandstats``: ``usec_per_call``
of EVALSHA, which includes every ``redis.call`` a script makes) what one call
of each hot script costs, so a change to the Lua, or to what ``lua/build.py``
emits, is seen by itself. It can hold several manifests side by side in the
same run, on the same server, interleaved round by round (``--git main`` next
to the working tree's build), which is how a before/after is quoted on this
shared machine.

Rows: a trivial script (``return 1`` with the nine keys of an enqueue), a
single enqueue, enqueue_many x1000, dequeue 100 (charge and reserve modes) and
complete_many 100 without a result; the leased design's scripts
(bench/floors.py) with the same payloads. Then homing's only: cancel of a
ready event at a random place in a queue of 10,000 (one in ten cancelled),
dequeue 100 draining that queue afterwards (through its dead copies), and
dequeue 100 draining 10,000 of which the last 3 were cancelled. It
starts a private redis-server on a free port and resets that server's
statistics before each case (nobody else's).

    .venv/bin/python bench/luacost.py                       # the working tree's build
    .venv/bin/python bench/luacost.py --git main            # plus main's, side by side
    .venv/bin/python bench/luacost.py --manifest old=/tmp/m.json --rounds 9
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "python"))
import redis
from homing.envelope import encode

from floors import LEASED_COMPLETE, LEASED_DEQUEUE, LEASED_ENQUEUE
from timers import private_redis, wait_ping

BUILT = HERE.parent / "python" / "homing" / "manifest.json"
PREFIX = "lcost"
BODY = encode({"n": 1, "kind": "bench"})


def _stats(r: redis.Redis) -> tuple[int, int]:
    s = r.info("commandstats").get("cmdstat_evalsha", {})
    return int(s.get("calls", 0)), int(s.get("usec", 0))


class Callgrind:
    """Counts the instructions redis-server runs (``--instructions``), under valgrind.

    Why: time on a shared VM moves by ±20% with the neighbours' load, which
    hides a 5% change; an instruction count does not move at all. It weighs
    every instruction alike (no cache misses, no system calls), so it ranks
    changes to the Lua and is no substitute for the time figures.
    """

    def __init__(self, pid: int, out: Path) -> None:
        self.pid, self.out = pid, out

    def _control(self, flag: str) -> None:
        subprocess.run(["callgrind_control", flag, str(self.pid)], check=True,
                       capture_output=True)

    def count(self, run: Callable[[], Any]) -> int:
        self._control("-z")
        run()
        before = set(self.out.parent.glob(self.out.name + ".*"))
        self._control("-d")
        for _ in range(100):
            new = set(self.out.parent.glob(self.out.name + ".*")) - before
            if new:
                text = next(iter(new)).read_text(encoding="utf-8", errors="replace")
                for line in text.splitlines():
                    if line.startswith("totals:"):
                        return int(line.split()[1])
            time.sleep(0.1)
        raise RuntimeError("callgrind wrote no dump")


COUNTER: Callgrind | None = None


@contextmanager
def callgrind_redis() -> Iterator[str]:
    """A throwaway redis-server under callgrind on a free port; its URL."""
    global COUNTER
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tmp = Path(tempfile.mkdtemp(prefix="homing-luacost-"))
    out = tmp / "cg.out"
    proc = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                             "redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", str(tmp)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ping(port, 600)  # valgrind starts slowly
        COUNTER = Callgrind(proc.pid, out)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        COUNTER = None
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


def timed(r: redis.Redis, step: Callable[[int], Any], count: int, chunk: int) -> list[float]:
    """µs of Redis time per EVALSHA of step(0..count-1), one mean per chunk of calls.

    Why chunks: on a shared machine a call that Redis spends descheduled
    counts its wait as its time. One figure per few milliseconds of calls,
    and a low quantile of them (--stat), leaves out the chunks that were hit.
    Under --instructions: thousands of instructions per call instead, one figure.
    """
    if COUNTER is not None:
        n0, _ = _stats(r)
        total = COUNTER.count(lambda: [step(i) for i in range(count)])
        n1, _ = _stats(r)
        return [total / 1000 / max(n1 - n0, 1)]
    out = []
    n0, u0 = _stats(r)
    for start in range(0, count, chunk):
        for i in range(start, min(start + chunk, count)):
            step(i)
        n1, u1 = _stats(r)
        if n1 > n0:
            out.append((u1 - u0) / (n1 - n0))
        n0, u0 = n1, u1
    return out


def drains(calls: int) -> int:
    """Calls of the dequeue and complete rows: 100 events each, a multiple of 10."""
    return max(calls // 100, 1) * 10


Rows = dict[str, tuple[list[float], int]]


class Homing:
    """One manifest's hot scripts on one private service per round."""

    def __init__(self, r: redis.Redis, manifest: dict) -> None:
        self.r = r
        self.scripts = manifest["scripts"]
        self.sha = {name: r.script_load(self.scripts[name]["source"])
                    for name in ("enqueue", "dequeue", "complete", "cancel_event")}

    def keys(self, script: str, service: str) -> list[str]:
        return [f"{PREFIX}:{{{service}}}:{k}" for k in self.scripts[script]["keys"]]

    def call(self, script: str, service: str, *args: Any) -> Any:
        keys = self.keys(script, service)
        return self.r.evalsha(self.sha[script], len(keys), *keys, *args)

    def enqueue(self, service: str, n: int) -> list[str]:
        args: list[Any] = [1048576, n]
        ids = [uuid.uuid4().hex for _ in range(n)]
        for i in ids:
            args += [i, BODY, "", 0]
        self.call("enqueue", service, *args)
        return ids

    def cases(self, service: str, calls: int) -> Rows:
        """Each row's (µs per call of each chunk, events per call)."""
        one = timed(self.r, lambda _: self.enqueue(service + "1", 1), calls, 50)
        out = {"enqueue x1": (one, 1),
               "enqueue_many x1000": (timed(self.r, lambda _: self.enqueue(service + "k", 1000),
                                            max(calls // 50, 4), 1), 1000)}
        for mode in ("0", "1"):
            deq, ack = self.drain(service + "d" + mode, mode, calls)
            out[f"dequeue 100 reserve={mode}"] = (deq, 100)
            out[f"complete_many 100 reserve={mode}"] = (ack, 100)
        cancel, after = self.cancels(service + "c", calls)
        out["cancel x1 (ready, 10k queued)"] = (cancel, 1)
        out["dequeue 100 after the cancels"] = (after, 100)
        out["dequeue 100, 3 cancels far back"] = (self.far(service + "f"), 100)
        return out

    def far(self, svc: str) -> list[float]:
        """dequeue 100 draining 10,000 ready events of which the last 3 enqueued
        were cancelled: every call but the last runs while dead copies exist, far
        from the tail (where a cancel leaves them)."""
        ids = [i for _ in range(10) for i in self.enqueue(svc, 1000)]
        for i in ids[-3:]:
            self.call("cancel_event", svc, i)
        out = timed(self.r, lambda _: self.call("dequeue", svc, 100, 30000, "0"), 100, 5)
        if self.r.llen(self.keys("dequeue", svc)[0]):
            raise RuntimeError("the drain far from the cancels left ids in the ready list")
        return out

    def cancels(self, svc: str, calls: int) -> tuple[list[float], list[float]]:
        """Cancel one in ten of 10,000 ready events, at random places (timed one by
        one), then drain the queue with dequeue 100 (timed): through their dead
        copies where a cancel leaves them."""
        ids = [i for _ in range(10) for i in self.enqueue(svc, 1000)]
        picked = random.Random(7).sample(ids, max(min(calls // 2, len(ids) // 10), 10))
        cancel = timed(self.r, lambda n: self.call("cancel_event", svc, picked[n]),
                       len(picked), 10)
        # One call more than the live events need: it takes the dead copies left
        # past the last of them (at the list's head).
        left = len(ids) - len(picked)
        after = timed(self.r, lambda _: self.call("dequeue", svc, 100, 30000, "0"),
                      (left + 99) // 100 + 1, 5)
        if self.r.llen(self.keys("dequeue", svc)[0]):
            raise RuntimeError("the drain after the cancels left ids in the ready list")
        return cancel, after

    def drain(self, svc: str, mode: str, calls: int) -> tuple[list[float], list[float]]:
        """dequeue 100 then complete_many 100 of what it leased, each timed alone."""
        for _ in range(drains(calls) // 10):
            self.enqueue(svc, 1000)
        got: list[list[Any]] = []
        deq = timed(self.r, lambda _: got.append(self.call("dequeue", svc, 100, 30000, mode)),
                    drains(calls), 5)
        items = []
        for reply in got:
            rows = reply[2:]
            items.append([x for i in range(0, len(rows), 5) for x in (rows[i], rows[i + 1], "")])
        ack = timed(self.r, lambda i: self.call("complete", svc, 1048576, len(items[i]) // 3,
                                                *items[i]), len(items), 5)
        if self.r.hlen(self.keys("complete", svc)[1]):
            raise RuntimeError("complete_many left records behind")
        return deq, ack


class Leased:
    """bench/floors.py's minimal leased design, the same rows."""

    def __init__(self, r: redis.Redis) -> None:
        self.r = r
        self.sha = {n: r.script_load(s) for n, s in
                    (("enq", LEASED_ENQUEUE), ("deq", LEASED_DEQUEUE), ("ack", LEASED_COMPLETE))}

    def enqueue(self, service: str, n: int) -> None:
        args: list[Any] = []
        for _ in range(n):
            args += [uuid.uuid4().hex, BODY]
        self.r.evalsha(self.sha["enq"], 2, f"{service}:b", f"{service}:q", *args)

    def cases(self, service: str, calls: int) -> Rows:
        one = timed(self.r, lambda _: self.enqueue(service + "1", 1), calls, 50)
        out = {"enqueue x1": (one, 1),
               "enqueue_many x1000": (timed(self.r, lambda _: self.enqueue(service + "k", 1000),
                                            max(calls // 50, 4), 1), 1000)}
        svc = service + "d"
        for _ in range(drains(calls) // 10):
            self.enqueue(svc, 1000)
        got: list[list[Any]] = []
        keys = (f"{svc}:b", f"{svc}:q", f"{svc}:l")
        deq = timed(self.r, lambda _: got.append(self.r.evalsha(self.sha["deq"], 3, *keys, 100,
                                                                30000)), drains(calls), 5)
        ack = timed(self.r, lambda i: self.r.evalsha(self.sha["ack"], 2, keys[2], keys[0],
                                                     *got[i][0::2]), len(got), 5)
        for mode in ("0", "1"):
            out[f"dequeue 100 reserve={mode}"] = (deq, 100)
            out[f"complete_many 100 reserve={mode}"] = (ack, 100)
        return out


def trivial(r: redis.Redis, calls: int) -> Rows:
    sha = r.script_load("return 1")
    keys = [f"{PREFIX}:{{t}}:{i}" for i in range(9)]
    return {"trivial": (timed(r, lambda _: r.evalsha(sha, 9, *keys, "1"), calls, 50), 1)}


def p25(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=4)[0] if len(xs) > 1 else xs[0]


def load(spec: str) -> tuple[str, dict]:
    label, _, path = spec.rpartition("=")
    return label or Path(path).stem, json.loads(Path(path).read_text(encoding="utf-8"))


def from_git(ref: str) -> tuple[str, dict]:
    text = subprocess.run(["git", "show", f"{ref}:python/homing/manifest.json"], cwd=HERE.parent,
                          check=True, capture_output=True, text=True).stdout
    return ref, json.loads(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", action="append", default=[], metavar="[LABEL=]PATH",
                    help="a manifest to measure (repeatable; default: the working tree's build)")
    ap.add_argument("--git", action="append", default=[], metavar="REF",
                    help="also measure python/homing/manifest.json as committed at REF")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    ap.add_argument("--calls", type=int, default=2000, help="calls per single-event row")
    ap.add_argument("--stat", choices=("p25", "median", "min"), default="p25",
                    help="over every chunk's mean of every round (default p25: the chunks "
                         "Redis was descheduled in are left out)")
    ap.add_argument("--instructions", action="store_true",
                    help="count redis-server's instructions under valgrind instead of timing "
                         "(thousands per call; steady on a busy machine; use fewer --calls)")
    ns = ap.parse_args(argv)
    manifests = [load(m) for m in ns.manifest] or [("built", json.loads(BUILT.read_text("utf-8")))]
    manifests += [from_git(ref) for ref in ns.git]
    with (callgrind_redis() if ns.instructions else private_redis()) as url:
        r = redis.Redis.from_url(url)
        runners: dict[str, Any] = {"leased": Leased(r)}
        runners.update((label, Homing(r, m)) for label, m in manifests)
        cols = list(runners)
        samples: dict[tuple[str, str], list[float]] = {}
        per_call: dict[str, int] = {"trivial": 1}
        for rnd in range(ns.rounds + 1):  # round 0 warms up and is not kept
            rows = trivial(r, ns.calls)
            for label, runner in runners.items():
                rows_of = runner.cases(f"r{rnd}{label}", ns.calls)
                for row, (us, n) in rows_of.items():
                    per_call[row] = n
                    if rnd:
                        samples.setdefault((row, label), []).extend(us)
                r.flushall()
            if rnd:
                samples.setdefault(("trivial", "leased"), []).extend(rows["trivial"][0])
        stat = {"p25": p25, "median": statistics.median, "min": min}[ns.stat]
        unit = ("thousand instructions" if ns.instructions else
                f"µs of Redis time, {ns.stat} of the chunks of {ns.rounds} rounds")
        print(f"{unit} per call (per event); "
              "ratio: leased per event / each build's")
        head = f"{'row':34s}" + "".join(f"{c:>22s}" for c in cols) + "".join(
            f"{'ratio ' + c:>14s}" for c in cols[1:])
        print(head)
        for row, per in per_call.items():
            line, med = f"{row:34s}", {}
            for c in cols:
                xs = samples.get((row, c))
                if not xs:
                    line += f"{'':>22s}"
                    continue
                med[c] = stat(xs) / per
                cell = f"{stat(xs):.1f}"
                if per > 1:
                    cell += f" ({med[c]:.2f})"
                line += f"{cell:>22s}"
            for c in cols[1:]:
                ratio = med["leased"] / med[c] if "leased" in med and c in med else None
                line += f"{ratio:>14.2f}" if ratio else f"{'':>14s}"
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
