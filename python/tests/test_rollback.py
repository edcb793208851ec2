"""Issue 7, item 3: fencing tokens survive Redis going back in time.

A Redis restarted from an older snapshot (or a replica promoted before it
had everything) has its ``seq`` counters back in the past. The tokens it
then hands out must still be new, or a consumer holding a token from before
the rollback could complete an event that is now someone else's.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from servers import RedisServer

import homing

SERVICE = "rollback"


def test_tokens_are_never_reissued_after_a_restore_from_an_older_snapshot(
        tmp_path: Path) -> None:
    srv = RedisServer(tmp_path, extra=["--dbfilename", "dump.rdb"])
    with srv:
        client = homing.Client.from_url(srv.url, prefix="rb")
        client.enqueue_many(SERVICE, list(range(200)))
        # Under load: leases taken before and after the snapshot.
        before = client.dequeue(SERVICE, 50)
        client.redis.save()
        shutil.copy(tmp_path / "dump.rdb", tmp_path / "old.rdb")
        after = client.dequeue(SERVICE, 100)
        for ev in after[:50]:
            client.complete(SERVICE, ev.id, ev.token)
        seen = {ev.token for ev in before + after}
        client.close()
        srv.kill()
        shutil.copy(tmp_path / "old.rdb", tmp_path / "dump.rdb")
        time.sleep(0.01)  # the new server's clock is past every token handed out
        srv.restart()
        client = homing.Client.from_url(srv.url, prefix="rb")
        # The snapshot knew only the first 50 leases: the rest are ready again.
        assert client.stats(SERVICE)["ready"] == 150
        again = client.dequeue(SERVICE, 150)
        assert len(again) == 150
        assert not seen & {ev.token for ev in again}, "a token was handed out twice"
        assert min(ev.token for ev in again) > max(seen)
        # Every consumer that held a lease from after the snapshot is refused now,
        # though the same events are leased again: their acks are stale.
        redelivered = {ev.id: ev for ev in again}
        stale = [(ev.id, ev.token, None) for ev in after if ev.id in redelivered]
        assert len(stale) == 100
        refused = client.complete_many(SERVICE, stale)
        assert all(isinstance(err, homing.StaleLeaseError) for err in refused)
        # ... and the new holders' acks are accepted.
        fresh = [(ev.id, ev.token, None) for ev in again]
        assert client.complete_many(SERVICE, fresh) == [None] * 150
        client.close()
