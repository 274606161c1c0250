"""Eligibility in the ``sync`` mode: which replicas the primary waits for, and who may
be promoted.

A replica starts **ineligible**. Once it has caught up (its acknowledged offset equals
the primary's), the primary grants it eligibility: from then on every write waits for
its acknowledgement (the replica provider), and the grant is sent to the replica
(``REPLCONF ELIGIBLE <epoch> <offset>``, on the replication link, outside the stream)
and recorded in the failover monitors' shared configuration.

A replica is dropped when its link breaks, times out or needs a resync. The primary then
asks the monitors to record the revocation, and stops waiting for the replica only once
a **majority** has recorded it. Elections use the agreed set, so a replica the primary
stopped waiting for can never be promoted, and a primary that cannot reach a majority
cannot revoke: its writes wait and time out instead of being acknowledged by a minority
(Kafka's rule for its in-sync replica set). ``sync-unilateral-revoke yes`` skips the
agreement -- the unsafe variant, kept to be shown losing writes.

Granting needs no pause of the writers here: the check "acknowledged offset == primary
offset" and the grant run in one event-loop callback, so no write can slip between
them. A replica that keeps lagging behind a steady flow of writes is caught by pausing
the writers briefly (``CATCH_UP_PAUSE_S``), as a manual failover does.
"""

from __future__ import annotations

import asyncio
import time

from .. import events as ev
from ..resp import encode_command

CATCH_UP_BYTES = 64 * 1024       # a replica this close gets the writers paused for it
CATCH_UP_PAUSE_S = 0.25          # the longest the writers are paused for one grant
RETRY_S = 0.2                    # between attempts to agree on a revocation


class Eligibility:
    """The primary's side: grants, revocations, and their agreement by the monitors."""

    def __init__(self, server, provider, granted: list[str]):
        self.server = server
        self.provider = provider
        for name in granted:                     # restored after a restart
            provider.grant(name, 0)
        self.revoking: dict[str, str] = {}        # replica -> reason, until agreed
        self.catching_up: str | None = None
        self._catch_up_timer: asyncio.TimerHandle | None = None
        self._retry_after = 0.0
        self._tasks: set[asyncio.Task] = set()
        self.stopped = False

    @property
    def eligible(self) -> list[str]:
        return sorted(self.provider.eligible)

    def stop(self) -> None:
        self.stopped = True
        self._end_catch_up()
        for task in list(self._tasks):
            task.cancel()

    # -- what the replication layer reports --------------------------------------------
    def acked(self, peer) -> None:
        self.provider.acked(peer.name, peer.ack_offset)
        self.maybe_grant(peer)

    def resynced(self, peer, full: bool) -> None:
        """A replica (re)started its sync: if it was eligible, that grant is over."""
        if not self.stopped and peer.name in self.provider.eligible:
            self.revoke(peer.name, "full resync" if full else "reconnected")

    def dropped(self, peer, reason: str) -> None:
        # a crashing primary closes its replicas' links: that ends nothing it granted
        if not self.stopped and peer.name in self.provider.eligible:
            self.revoke(peer.name, reason)

    # -- granting ------------------------------------------------------------------------
    def maybe_grant(self, peer) -> None:
        name, server = peer.name, self.server
        if (self.stopped or name in self.provider.eligible or name in self.revoking
                or peer.state != "online" or peer.conn.closing):
            return
        behind = server.repl.offset - peer.ack_offset
        if behind <= 0:
            self._grant(peer)
        elif (behind <= CATCH_UP_BYTES and self.catching_up is None
              and time.monotonic() >= self._retry_after):
            self._start_catch_up(peer)

    def _start_catch_up(self, peer) -> None:
        """Pause the writers so the replica can reach the primary's offset."""
        self.catching_up = peer.name
        self.server.pause_writers(True)
        self.server.repl.request_acks()
        self._catch_up_timer = asyncio.get_running_loop().call_later(
            CATCH_UP_PAUSE_S, self._catch_up_failed)

    def _catch_up_failed(self) -> None:
        self._catch_up_timer = None
        self._end_catch_up()
        self._retry_after = time.monotonic() + 1.0

    def _end_catch_up(self) -> None:
        if self.catching_up is not None:
            self.catching_up = None
            self.server.pause_writers(False)
        if self._catch_up_timer is not None:
            self._catch_up_timer.cancel()
            self._catch_up_timer = None

    def _grant(self, peer) -> None:
        server = self.server
        offset = server.repl.offset
        self.provider.grant(peer.name, peer.ack_offset)
        self._end_catch_up()
        self._save()
        monitor = server.node.monitor
        epoch = monitor.epoch if monitor is not None else 0
        peer.conn.write_raw(encode_command([b"REPLCONF", b"ELIGIBLE", b"%d" % epoch,
                                            b"%d" % offset]))
        server.log(f"Replica {peer.name} is eligible (caught up at offset {offset})")
        server.events.publish(ev.EligibilityGranted(server.name, replica=peer.name,
                                                    offset=offset, epoch=epoch))
        self._agree(f"grant {peer.name}")

    # -- revoking ------------------------------------------------------------------------
    def revoke(self, name: str, reason: str) -> None:
        if self.stopped or name in self.revoking or name not in self.provider.eligible:
            return
        server = self.server
        monitor = server.node.monitor
        if monitor is None or server.config["sync-unilateral-revoke"]:
            self._revoked(name, reason, agreed=False)
            self._agree(f"revoke {name}")            # tell the monitors anyway
            return
        self.revoking[name] = reason
        server.log(f"Replica {name} dropped ({reason}): asking the monitors to record "
                   "its revocation; its acknowledgement is still required until they do")
        self._agree(f"revoke {name}")

    def _revoked(self, name: str, reason: str, agreed: bool) -> None:
        from ..server import gating
        self.provider.revoke(name)
        self.revoking.pop(name, None)
        self._save()
        server = self.server
        server.log(f"Replica {name} is no longer eligible ({reason}"
                   f"{', agreed by a majority of monitors' if agreed else ', unilaterally'})")
        server.events.publish(ev.EligibilityRevoked(server.name, replica=name, reason=reason,
                                                    agreed=agreed))
        gating.progress(server)

    # -- agreement by the monitors ---------------------------------------------------------
    def agreed_set(self) -> list[str]:
        """The set the monitors should record: granted, minus what is being revoked."""
        return sorted(n for n in self.provider.eligible if n not in self.revoking)

    def _agree(self, why: str) -> None:
        if self.server.node.monitor is None or any(t.get_name() == "agree" for t in self._tasks):
            return                                   # the running attempt re-reads the set
        task = asyncio.get_running_loop().create_task(self._agree_until_done(), name="agree")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _agree_until_done(self) -> None:
        """Propose the current set until a majority of monitors has recorded it; then
        finish the revocations it contains."""
        while not self.stopped:
            monitor = self.server.node.monitor
            if monitor is None or self.server.link is not None:
                return
            wanted = self.agreed_set()
            if monitor.eligible == wanted and monitor.eligible_agreed:
                done = True
            else:
                try:
                    done = await monitor.record_eligible(wanted)
                except Exception as err:       # never leave a revocation pending forever
                    self.server.log(f"recording the eligible set failed: {err!r}")
                    done = False
            if done and not self.stopped and self.server.link is None:
                for name in [n for n in self.revoking if n not in monitor.eligible]:
                    self._revoked(name, self.revoking[name], agreed=True)
                if self.agreed_set() == monitor.eligible:
                    return
            await asyncio.sleep(RETRY_S)

    def _save(self) -> None:
        self.server.node.save_state(eligible=sorted(self.provider.eligible))

    # -- what INFO shows -------------------------------------------------------------------
    def is_eligible(self, name: str) -> bool:
        return name in self.provider.eligible
