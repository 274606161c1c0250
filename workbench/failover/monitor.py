"""The failover monitor: a Sentinel beside every node, as Valkey deployments run today.

Each node has a co-located monitor. Monitors share one *configuration*: a config
**epoch** and the name of the primary. Every ``ping_interval`` each monitor:

1. pings every node through its own node's network links (so a monitor sees exactly
   what its node sees: it sits on the same side of any partition);
2. exchanges its configuration with the other monitors (``SENTINEL HELLO``) and adopts
   any newer one -- the highest epoch wins;
3. keeps its own node in line with the configuration: a node that is not the
   configured primary is made a replica of it. This is how an old primary that
   comes back after a partition or a crash is *demoted*, and why its writes from the
   meantime vanish in the full resync that follows.

When the primary has not answered for ``down_after_ms`` the monitor thinks it is down
(SDOWN). It asks the others (``SENTINEL IS-MASTER-DOWN-BY-ADDR``) and, in the same
message, asks for their vote for a new epoch; each monitor votes once per epoch. With a
majority agreeing the primary is down (ODOWN) and a majority of votes, it is the
failover leader: it promotes the **reachable** replica with the highest replication
offset and announces the new configuration.

In ``async`` mode nothing here waits for writes to be safe. A minority primary keeps
accepting writes (nobody told it anything), the majority promotes someone else, and when
the partition heals the old primary's acknowledged writes are discarded. That is the
lesson.

In ``sync`` mode the configuration also holds the **eligible set**: the replicas the
primary waits for on every write. Changing it is a vote, like a failover: the primary's
monitor proposes the new set for a new epoch (``SENTINEL PROPOSE``), each monitor grants
one proposal or failover per epoch, and the set counts as recorded once a majority has
adopted it. A failover may only promote a replica of the agreed set that still says it is
eligible (a restart clears that), and a voter refuses a candidate outside its own set:
a majority that recorded a revocation always overlaps a majority that elects.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time

from .. import events as ev
from ..resp import ReplyError
from .peer import PeerClient


# Replies that still prove a node is up (Sentinel counts LOADING and MASTERDOWN; a node
# refusing our password is up too, and the log says why we cannot talk to it).
_ALIVE_ERRORS = ("LOADING", "MASTERDOWN", "NOAUTH", "WRONGPASS")


class Monitor:
    def __init__(self, node, names: list[str], *, down_after_ms: int):
        self.node = node
        self.name = node.name
        self.names = list(names)
        # sync: members added to a running cluster that do not vote yet (their node is
        # not eligible); they hear the configuration but count for no quorum
        self.learners: set[str] = set()
        self.down_after = down_after_ms / 1000
        self.ping_interval = min(self.down_after / 5, 0.2)
        self.quorum = len(self.names) // 2 + 1
        self.epoch = 0
        self.primary = self.names[0]
        self.voted_epoch = 0
        self.voted_for = ""
        self.eligible: list[str] = []          # sync: the agreed eligible set
        self.recorded_epoch = 0                # the epoch this monitor last got recorded
        self.last_ok: dict[str, float] = {n: time.monotonic() for n in self.names}
        # Monitors authenticate on every connection with their node's ``masterauth``, the
        # password of the replication group (Sentinel's ``auth-pass``).
        self.peers = {n: PeerClient(lambda n=n: node.address_of(n),
                                    lambda: node.config["masterauth"])
                      for n in self.names if n != self.name}
        self._auth_refused: dict[str, str] = {}     # peer -> the error its AUTH got
        self.failover_in_progress = False
        self.next_failover_at = 0.0
        # Sentinel desynchronizes rival candidates with random delays; seeding by name
        # keeps a run reproducible while still giving every monitor its own timing.
        self._jitter = random.Random(self.name)
        self._in_flight: set = set()
        self._saw_primary_down = False
        self._task: asyncio.Task | None = None
        self._tasks: set = set()
        self.stopped = False
        self._path = os.path.join(node.data_dir, "monitor.json")
        self._load()

    # -- persistence: like Sentinel rewriting its config file --------------------------
    def _load(self) -> None:
        try:
            with open(self._path) as f:
                saved = json.load(f)
            self.epoch, self.primary = saved["epoch"], saved["primary"]
            self.voted_epoch, self.voted_for = saved["voted_epoch"], saved["voted_for"]
            self.eligible = list(saved.get("eligible", []))
            self.learners = set(saved.get("learners", [])) & set(self.names)
            self._count_voters()
        except (OSError, ValueError, KeyError):
            pass

    def _save(self) -> None:
        from ..storage import atomic_write
        atomic_write(self._path, json.dumps({
            "epoch": self.epoch, "primary": self.primary,
            "voted_epoch": self.voted_epoch, "voted_for": self.voted_for,
            "eligible": self.eligible, "learners": sorted(self.learners)}).encode())

    @property
    def sync_mode(self) -> bool:
        return self.node.config["durability-mode"] == "sync"

    @property
    def eligible_agreed(self) -> bool:
        """This monitor got its current configuration recorded by a majority."""
        return self.recorded_epoch == self.epoch

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        now = time.monotonic()
        self.last_ok = {n: now for n in self.names}
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        self.stopped = True
        if self._task is not None:
            self._task.cancel()
        for task in list(self._tasks):
            task.cancel()
        for peer in self.peers.values():
            peer.close()

    # -- membership (Cluster.add_node / remove_node) -------------------------------------
    def add_member(self, name: str, *, voter: bool = True) -> None:
        """Ping, hello and (if ``voter``) count the monitor of node ``name`` from now on.

        A non-voter (sync: a new replica, not yet eligible) is a learner: it hears the
        configuration, and joins the quorum once the agreed eligible set names it."""
        if name in self.names:
            return
        self.names.append(name)
        self.last_ok[name] = time.monotonic()      # as at start: down only after a silence
        if name != self.name:
            self.peers[name] = PeerClient(lambda: self.node.address_of(name),
                                          lambda: self.node.config["masterauth"])
        if not voter:
            self.learners.add(name)
        self._count_voters()
        self._save()

    def remove_member(self, name: str) -> None:
        """Forget node ``name`` (removed from the cluster): no pings, no votes counted."""
        if name not in self.names or name == self.name:
            return
        self.names.remove(name)
        peer = self.peers.pop(name, None)
        if peer is not None:
            peer.close()
        self.last_ok.pop(name, None)
        self._auth_refused.pop(name, None)
        self.learners.discard(name)
        self._count_voters()
        self._save()

    def join(self, epoch: int, primary: str, eligible: list[str], learners) -> None:
        """Start from the configuration the other monitors hold, as a Sentinel added to a
        running deployment is told which primary to watch. It votes in no epoch up to
        ``epoch``: votes there were cast before it was a member."""
        self.epoch, self.primary, self.eligible = epoch, primary, list(eligible)
        self.voted_epoch = max(self.voted_epoch, epoch)
        self.learners = set(learners) & set(self.names)
        self._count_voters()
        self._save()

    def _count_voters(self) -> None:
        """The quorum is a majority of the voting members; an agreed grant makes a
        learner a voter (the quorum grows by its one vote)."""
        granted = self.learners & set(self.eligible)
        if granted:
            self.learners -= granted
            self.node.log(f"monitor counts {_csv(sorted(granted))} as voting members "
                          "(granted eligibility)")
        voters = [n for n in self.names if n not in self.learners]
        self.quorum = len(voters) // 2 + 1

    async def _run(self) -> None:
        while not self.stopped:
            await asyncio.sleep(self.ping_interval)
            try:
                await self._tick()
            except asyncio.CancelledError:
                raise
            except Exception as err:   # a monitor must never die of one bad round
                self.node.log(f"monitor round failed: {err!r}")

    async def _tick(self) -> None:
        """One round. Pings and hellos run in the background, one per peer at a time,
        so an unreachable peer (whose calls hang until they time out) never slows
        the round down."""
        if self.node.server is not None and self.node.server.paused:
            return                         # paused with its node, like a stopped process
        timeout = max(self.ping_interval * 2, 0.1)
        for name in self.peers:
            self._spawn(("ping", name), self._ping(name, timeout))
            if self.reachable(name):
                self._spawn(("hello", name), self._hello(name, timeout))
        self.last_ok[self.name] = time.monotonic()
        self._reconcile_own_node()
        primary_down = self.primary != self.name and not self.reachable(self.primary)
        if primary_down and not self._saw_primary_down:
            # Rival monitors notice the same silence in the same round. Starting a few
            # rounds apart by rank (plus a little jitter) lets the first candidate collect
            # the votes before the next one even asks: no split vote in the common case.
            rank = self.names.index(self.name)
            self.next_failover_at = max(self.next_failover_at, time.monotonic()
                                        + rank * 3 * self.ping_interval
                                        + self._jitter.uniform(0, self.ping_interval))
        self._saw_primary_down = primary_down
        if (primary_down and not self.failover_in_progress and self.name not in self.learners
                and time.monotonic() >= self.next_failover_at):
            self.node.events.publish(ev.PrimaryDown(self.name, primary=self.primary,
                                                    objective=False))
            self.failover_in_progress = True
            self._spawn(("failover",), self._failover_round(timeout))

    def _spawn(self, key: tuple, coro) -> None:
        if key in self._in_flight:
            coro.close()
            return
        self._in_flight.add(key)
        task = asyncio.get_running_loop().create_task(coro)
        task.add_done_callback(lambda _t: self._in_flight.discard(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _failover_round(self, timeout: float) -> None:
        try:
            await self._try_failover(timeout)
        finally:
            self.failover_in_progress = False

    async def _ping(self, name: str, timeout: float) -> None:
        try:
            if self.sync_mode and name == self.primary:
                # sync: the primary must still *be* one (an in-memory primary that
                # restarted empty comes back as a replica: it is down as a primary)
                reply = await self.peers[name].call("ROLE", timeout=timeout)
                if isinstance(reply, list) and reply and reply[0] != b"master":
                    return
            else:
                reply = await self.peers[name].call("PING", timeout=timeout)
            if not isinstance(reply, ReplyError) or reply.prefix in _ALIVE_ERRORS:
                self.last_ok[name] = time.monotonic()
            self._note_auth(name, reply)
        except (OSError, asyncio.TimeoutError, EOFError, ValueError):
            pass

    async def _hello(self, name: str, timeout: float) -> None:
        try:
            reply = await self.peers[name].call("SENTINEL", "HELLO", self.epoch, self.primary,
                                                _csv(self.eligible), timeout=timeout)
        except (OSError, asyncio.TimeoutError, EOFError, ValueError):
            return None
        if isinstance(reply, list) and len(reply) == 3:
            self.adopt(int(reply[0]), reply[1].decode(), _names(reply[2]))
            return int(reply[0]), _names(reply[2])
        return None

    def _note_auth(self, name: str, reply) -> None:
        """Log once when a peer starts (or stops) refusing this monitor's password."""
        refused = reply.text if isinstance(reply, ReplyError) and reply.prefix in (
            "NOAUTH", "WRONGPASS") else ""
        if refused != self._auth_refused.get(name, ""):
            self.node.log(f"monitor cannot authenticate to {name}: {refused}" if refused
                          else f"monitor authenticated to {name}")
            self._auth_refused[name] = refused

    def reachable(self, name: str) -> bool:
        return time.monotonic() - self.last_ok.get(name, 0) < self.down_after

    # -- configuration ----------------------------------------------------------------
    def adopt(self, epoch: int, primary: str, eligible: list[str] | None = None) -> None:
        if epoch > self.epoch and primary in self.names:
            self.node.log(f"monitor adopts epoch {epoch}: primary is {primary}"
                          + (f", eligible {_csv(eligible)}" if self.sync_mode else ""))
            self.epoch, self.primary = epoch, primary
            self.eligible = list(eligible or [])
            self._count_voters()
            self._save()
            self._reconcile_own_node()

    async def record_eligible(self, eligible: list[str]) -> bool:
        """Have a majority of monitors record ``eligible`` as the primary's set (sync).

        A vote for a new epoch, then the new configuration announced; True once a
        majority (this monitor included) has adopted it."""
        if self.primary != self.name:
            return False
        timeout = max(self.ping_interval * 2, 0.1)
        epoch = max(self.epoch, self.voted_epoch) + 1
        self.voted_epoch, self.voted_for = epoch, self.name
        self._save()
        reachable = [n for n in self.peers if self.reachable(n)]
        voters = [n for n in reachable if n not in self.learners]   # learners only listen

        async def ask(name):
            try:
                return await self.peers[name].call("SENTINEL", "PROPOSE", epoch, self.primary,
                                                    _csv(eligible), self.name, timeout=timeout)
            except (OSError, asyncio.TimeoutError, EOFError, ValueError):
                return None
        votes = 1 + sum(r == 1 for r in await asyncio.gather(*(ask(n) for n in voters)))
        if votes < self.quorum or self.epoch >= epoch or self.primary != self.name:
            return False
        self.epoch, self.eligible, self.recorded_epoch = epoch, list(eligible), epoch
        self._count_voters()
        self._save()
        heard = await asyncio.gather(*(self._hello(n, timeout) for n in reachable))
        recorded = 1 + sum(1 for n, h in zip(reachable, heard)
                           if h is not None and h[0] == epoch and n not in self.learners)
        if recorded < self.quorum:
            self.recorded_epoch = 0
            return False
        self.node.log(f"monitor: eligible set {_csv(eligible)} recorded by {recorded}/"
                      f"{len(self.names)} monitors in epoch {epoch}")
        return True

    def _reconcile_own_node(self) -> None:
        """Make this monitor's node agree with the configuration."""
        server = self.node.server
        if server is None:
            return
        if self.primary == self.name:
            if server.link is not None and self.epoch > 0 and not server.amnesic:
                server.become_primary()
            return
        host, port = "127.0.0.1", self.node.port_of(self.primary)
        link = server.link
        if link is None or link.port != port:
            self.node.log(f"monitor reconfigures {self.name} as a replica of {self.primary}")
            server.become_replica(host, port)

    # -- failover -----------------------------------------------------------------------
    async def _try_failover(self, timeout: float) -> None:
        old = self.primary
        candidate = None
        if self.sync_mode:
            candidate = await self._best_eligible(old, timeout)
            if candidate is None:
                self.node.log(f"monitor: {old} is unreachable and no eligible replica can "
                              f"replace it (agreed set: {_csv(self.eligible)}): waiting")
                self.next_failover_at = time.monotonic() + self.down_after
                return
        epoch = max(self.epoch, self.voted_epoch) + 1
        self.voted_epoch, self.voted_for = epoch, self.name
        self._save()
        down, votes = 1, 1
        extra = (candidate,) if candidate is not None else ()
        for name, peer in list(self.peers.items()):     # members may change meanwhile
            if not self.reachable(name) or name in self.learners:
                continue
            try:
                reply = await peer.call("SENTINEL", "IS-MASTER-DOWN-BY-ADDR", old, epoch,
                                        self.name, *extra, timeout=timeout)
            except (OSError, asyncio.TimeoutError, EOFError, ValueError):
                continue
            if isinstance(reply, list) and len(reply) == 3:
                down += int(reply[0])
                votes += int(reply[1] == self.name.encode() and int(reply[2]) == epoch)
        self.node.log(f"monitor: {down}/{len(self.names)} agree {old} is down; "
                      f"{votes} votes for {self.name} in epoch {epoch}")
        if down < self.quorum:
            self.next_failover_at = time.monotonic() + self.ping_interval
            return
        self.node.events.publish(ev.PrimaryDown(self.name, primary=old, objective=True))
        if votes < self.quorum:
            # A split vote: back off for a random while before trying a higher epoch.
            self.next_failover_at = time.monotonic() + self.down_after \
                + self._jitter.uniform(0, 2 * self.down_after)
            return
        self.node.events.publish(ev.FailoverBegun(self.name, old_primary=old, epoch=epoch))
        chosen = candidate if self.sync_mode else await self._best_replica(old, timeout)
        if chosen is None:
            self.node.log("failover aborted: no reachable replica")
            self.next_failover_at = time.monotonic() + self.down_after
            return
        if chosen == self.name:
            self.node.server.become_primary()
        else:
            try:
                reply = await self.peers[chosen].call("REPLICAOF", "NO", "ONE", timeout=timeout)
            except (OSError, asyncio.TimeoutError, EOFError):
                reply = "no answer"
            if reply != "OK":
                self.node.log(f"failover aborted: REPLICAOF NO ONE to {chosen} got {reply}")
                self.next_failover_at = time.monotonic() + self.down_after
                return
        # sync: the new primary starts with nobody eligible; its replicas earn it again
        self.epoch, self.primary, self.eligible = epoch, chosen, []
        self._save()
        self.node.log(f"failover epoch {epoch}: promoted {chosen} (old primary {old})")
        self.node.events.publish(ev.FailoverDone(self.name, old_primary=old, new_primary=chosen,
                                                 epoch=epoch))
        await asyncio.gather(*(self._hello(n, timeout) for n in self.peers if self.reachable(n)))
        self._reconcile_own_node()

    async def _best_replica(self, old: str, timeout: float) -> str | None:
        """The reachable replica with the highest replication offset (ties: lowest name),
        read from ``INFO replication`` as Sentinel does (``ROLE`` says -1 once the link
        to the dead primary is down, which would make every replica tie)."""
        offsets = {}
        server = self.node.server
        if self.name != old and server is not None and server.link is not None:
            offsets[self.name] = server.repl.offset
        for name in list(self.peers):
            if name != old and self.reachable(name):
                state = await self._replica_state(name, timeout)
                if state is not None:
                    offsets[name] = state[0]
        return _highest(offsets)

    async def _best_eligible(self, old: str, timeout: float) -> str | None:
        """sync: the agreed-eligible replica, reachable and still eligible by its own
        account (a restart clears that), with the highest offset (ties: lowest name)."""
        offsets = {}
        server = self.node.server
        for name in self.eligible:
            if name == old:
                continue
            if name == self.name:
                if server is not None and server.link is not None and server.replica_eligible:
                    offsets[name] = server.repl.offset
            elif self.reachable(name):
                state = await self._replica_state(name, timeout)
                if state is not None and state[1]:
                    offsets[name] = state[0]
        return _highest(offsets)

    async def _replica_state(self, name: str, timeout: float) -> tuple[int, bool] | None:
        """(replication offset, eligible) of a peer that is a replica, else None."""
        peer = self.peers.get(name)
        if peer is None:
            return None
        try:
            info = await peer.call("INFO", "replication", timeout=timeout)
        except (OSError, asyncio.TimeoutError, EOFError, ValueError):
            return None
        if not isinstance(info, bytes):
            return None
        fields = dict(line.split(":", 1) for line in info.decode().splitlines() if ":" in line)
        if fields.get("role") != "slave":
            return None
        return int(fields.get("slave_repl_offset", -1)), fields.get("replica_eligible") == "1"

    # -- what other monitors ask --------------------------------------------------------
    def handle_command(self, args: list):
        sub = args[0].upper() if args else b""
        if sub == b"HELLO" and len(args) in (3, 4):
            self.adopt(int(args[1]), args[2].decode(), _names(args[3]) if len(args) == 4 else [])
            return [self.epoch, self.primary.encode(), _csv(self.eligible).encode()]
        if sub == b"PROPOSE" and len(args) == 5:
            epoch, primary = int(args[1]), args[2].decode()
            if epoch > self.voted_epoch and epoch > self.epoch and primary == self.primary:
                self.voted_epoch, self.voted_for = epoch, args[4].decode()
                self._save()
                return 1
            return 0
        if sub == b"IS-MASTER-DOWN-BY-ADDR" and len(args) in (4, 5):
            primary, epoch, candidate = args[1].decode(), int(args[2]), args[3].decode()
            down = 1 if (primary == self.primary and not self.reachable(primary)) else 0
            if len(args) == 5 and args[4].decode() not in self.eligible:
                # sync: never help promote a replica outside the set this monitor recorded
                return [down, self.voted_for.encode() or b"*", self.voted_epoch]
            # As Sentinel does, the vote does not wait for this monitor's own opinion of
            # the primary: the candidate still needs a majority saying "down" to act.
            if primary == self.primary and candidate != "*" and epoch > self.voted_epoch:
                self.voted_epoch, self.voted_for = epoch, candidate
                self._save()
                if candidate != self.name:
                    # Sentinel's rule: having voted for another leader, give it a whole
                    # failover timeout before trying ourselves.
                    self.next_failover_at = time.monotonic() + 2 * self.down_after
            return [down, self.voted_for.encode() or b"*", self.voted_epoch]
        if sub == b"CONFIG" and len(args) == 1:
            return [self.epoch, self.primary.encode(), _csv(self.eligible).encode()]
        return ReplyError("ERR Unknown sentinel subcommand "
                          f"'{args[0].decode(errors='replace') if args else ''}'")

    def snapshot(self) -> dict:
        return {"epoch": self.epoch, "primary": self.primary, "eligible": list(self.eligible),
                "reachable": {n: self.reachable(n) for n in self.names}}


def _highest(offsets: dict) -> str | None:
    """The name with the highest offset; ties go to the lowest name (runs replay)."""
    if not offsets:
        return None
    return max(offsets, key=lambda n: (offsets[n], [-ord(c) for c in n]))


def _csv(names) -> str:
    """An eligible set on the wire: comma-separated names, "-" for none."""
    return ",".join(names) if names else "-"


def _names(raw) -> list[str]:
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return [] if text in ("-", "") else sorted(text.split(","))
