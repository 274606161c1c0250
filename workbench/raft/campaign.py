"""A randomized fault campaign for the Raft core: many seeds, each a different storm.

Theory of operation
-------------------
One campaign seed is one :class:`~workbench.raft.sim.Simulation` (seeded with the same
seed) driven by a schedule drawn from ``random.Random(f"campaign/{seed}")``. Each step
picks one action and then lets virtual time run for a moment:

============== =========================================================================
proposals      a burst of client commands at the leader (however stale it may be)
crash          a server stops; ``crash_while_persisting`` loses its next Ready unwritten
restart        a crashed server boots from its disk (or a live one is bounced)
figure 8       the leader takes a few commands and crashes before they commit (6.824)
bounces        servers restarted in quick succession, in the middle of elections
network        partitions, one-way cuts, one server disconnected, heal; and phases of
               an unreliable network (drops, duplicates, long delays) or a good one
leadership     ``transfer_leadership`` to another voter; a server campaigns on its own
membership     add a learner (a new server), promote a learner, remove a voter -- the
               leader included -- or a learner; never below three voters
snapshots      how often the application compacts (``snapshot_every``) changes
reads          ReadIndex at the leader
============== =========================================================================

Throughout, the simulator's :class:`~workbench.raft.safety.SafetyChecker` checks the
Figure 3 properties after every event; the campaign adds one of its own: a ReadState's
index is at least every index committed before the read was asked for (linearizable
reads). At the end the campaign heals everything -- network, crashed servers -- and
requires liveness: a leader is elected and one more command is applied by every member
of the configuration in force.

A seed's verdict is a :class:`CampaignResult`; everything in it comes from the seed and
the number of steps, so ``run_campaign(seed, steps)`` again replays the same run, bit for
bit (``fingerprint``). Removed servers are crashed for good once their removal commits,
and never come back (a server is never re-added under an old name).

The simulator runs a core's Readies until it has none; a core that always has one more
raises :class:`~workbench.raft.sim.Livelock`, which a campaign reports as a failure.

From a shell: ``python -m workbench.raft.campaign --seeds 1000 --steps 80``; from a
notebook: ``run_campaigns(range(1000), 80)`` (a tqdm bar) and ``result.report()``.
"""

from __future__ import annotations

import argparse
import random
import sys
import traceback
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

from .core import NotLeader, RaftConfig
from .safety import SafetyViolation
from .sim import Livelock, NetworkFaults, Simulation
from .types import ConfigChange, EntryKind

__all__ = ["CampaignResult", "Livelock", "LivenessFailure",
           "run_campaign", "run_campaigns", "main"]

DEFAULT_STEPS = 60
MIN_VOTERS = 3
MAX_SERVERS = 8             # servers ever started in one campaign, removed ones included
HEAL_TIMEOUT_MS = 60_000    # virtual time the healed cluster gets to elect and commit


class LivenessFailure(AssertionError):
    """The healed cluster did not elect a leader or commit on every member in time."""


@dataclass
class CampaignResult:
    """The verdict on one seed. ``kind`` is ``ok``, ``safety`` (a SafetyViolation, or a
    ReadIndex read that was not linearizable), ``livelock``, ``liveness`` or ``error`` (an
    unexpected exception). ``schedule`` is what the campaign did, ``trace`` the
    simulator's last events."""

    seed: int
    steps: int
    kind: str = "ok"
    failure: str = ""
    schedule: list[str] = field(default_factory=list)
    trace: str = ""
    fingerprint: str = ""
    virtual_ms: int = 0
    commits: int = 0            # highest index applied anywhere
    actions: Counter = field(default_factory=Counter)
    coverage: Counter = field(default_factory=Counter)   # what the run got to exercise
    config: str = ""

    @property
    def ok(self) -> bool:
        return self.kind == "ok"

    def report(self, schedule_tail: int = 40) -> str:
        head = (f"campaign seed {self.seed} ({self.steps} steps, {self.config}): {self.kind}"
                f" after {self.virtual_ms} virtual ms, {self.commits} entries committed")
        if self.ok:
            return head
        return "\n".join([
            head, self.failure, f"reproduce: run_campaign({self.seed}, {self.steps})",
            f"last {schedule_tail} actions of the schedule:",
            *self.schedule[-schedule_tail:], "last events of the simulator:", self.trace])


class _Campaign:
    def __init__(self, seed: int, steps: int):
        self.seed, self.steps = seed, steps
        self.rng = random.Random(f"campaign/{seed}")
        rng = self.rng
        protections = rng.choices([(True, True), (True, False), (False, True), (False, False)],
                                  weights=[70, 10, 10, 10])[0]
        self.config = RaftConfig(
            election_ticks=rng.choice([5, 10, 10, 20]),
            pre_vote=protections[0], check_quorum=protections[1],
            max_entries_per_message=rng.choice([1, 4, 64, 64]),
            max_inflight_messages=rng.choice([1, 2, 8, 8]))
        voters = rng.choice([3, 3, 5])
        self.sim = Simulation(voters, seed=seed, config=self.config,
                                     snapshot_every=rng.choice([None, 5, 20, 50]),
                                     trace_length=80)
        self.next_server = voters + 1
        self.schedule: list[str] = []
        self.actions: Counter = Counter()
        self.proposed = 0
        self.pending_removals: dict[str, tuple[int, bytes]] = {}   # node -> (index, entry data)
        self.retired: set[str] = set()     # removal committed: crashed for good (now or later)
        self.reads: dict[tuple, int] = {}  # read context -> highest index committed when asked
        self.read_cursor: dict[str, int] = {}

    # -- what the campaign sees --------------------------------------------------------------
    def note(self, *what) -> None:
        self.schedule.append(f"{self.sim.now_ms:>8} ms  " + " ".join(str(w) for w in what))

    def live(self) -> list[str]:
        return [n for n in sorted(self.sim.nodes) if self.sim.nodes[n].alive]

    def crashed(self) -> list[str]:
        return [n for n in sorted(self.sim.nodes)
                if not self.sim.nodes[n].alive and n not in self.retired]

    def leader_core(self):
        leader = self.sim.leader()
        return (leader, self.sim.nodes[leader].core) if leader else (None, None)

    def highest_committed(self) -> int:
        return max(self.sim.safety.committed, default=0)

    def view(self):
        """The membership in force at the leader, else the bootstrap one."""
        _, core = self.leader_core()
        return core.membership if core else self.sim.bootstrap

    # -- actions -----------------------------------------------------------------------------
    def act_propose(self) -> None:
        count = self.rng.choice([1, 1, 3, 10, 40])
        leader = self.sim.leader()
        accepted = 0
        for _ in range(count):
            self.proposed += 1
            if self.sim.propose(b"c%d" % self.proposed) is not None:
                accepted += 1
        self.note("propose", count, "at", leader, "accepted", accepted)

    def act_crash(self) -> None:
        live = [n for n in self.live() if n not in self.retired]
        if not live:
            return
        victim = self.rng.choice(live)
        voters = self.view().voters
        down = [n for n in sorted(voters) if not self.sim.nodes[n].alive]
        # Mostly keep a majority of the voters up, so that work gets done between faults.
        if victim in voters and len(down) + 1 > len(voters) - (len(voters) // 2 + 1) \
                and self.rng.random() < 0.8:
            return
        if self.rng.random() < 0.4:
            self.sim.crash_while_persisting(victim)
            self.note("crash while persisting", victim)
        else:
            self.sim.crash(victim)
            self.note("crash", victim)

    def act_restart(self) -> None:
        crashed = self.crashed()
        if crashed and self.rng.random() < 0.85:
            node = self.rng.choice(crashed)
        else:
            live = [n for n in self.live() if n not in self.retired]
            if not live:
                return
            node = self.rng.choice(live)
        self.sim.restart(node)
        self.note("restart", node)

    def act_figure8(self) -> None:
        """Figure 8 of the paper, as 6.824's Figure8 tests play it: the leader takes a few
        commands and dies a moment later, often before they are committed; a crashed
        server may come back."""
        leader = self.sim.leader()
        if leader is None or leader in self.retired:
            return
        for _ in range(self.rng.randint(1, 5)):
            self.proposed += 1
            self.sim.propose(b"c%d" % self.proposed, leader)
        ms = self.rng.randint(0, 60)
        self.sim.run(ms)
        if self.sim.nodes[leader].alive:
            self.sim.crash(leader)
        self.note("figure 8: proposals at", leader, "crashed", ms, "ms later")
        crashed = self.crashed()
        if crashed and self.rng.random() < 0.6:
            node = self.rng.choice(crashed)
            self.sim.restart(node)
            self.note("figure 8: restart", node)

    def act_bounces(self) -> None:
        """Servers restarted in quick succession -- in the middle of elections, between a
        vote and the next request -- so that whatever a server forgets on restart shows."""
        for _ in range(self.rng.randint(2, 8)):
            live = [n for n in self.live() if n not in self.retired]
            if not live:
                return
            node = self.rng.choice(live)
            self.sim.restart(node)
            ms = self.rng.randint(5, 120)
            self.note("bounce", node, "then", ms, "ms")
            self.sim.run(ms)

    def act_network(self) -> None:
        rng, sim = self.rng, self.sim
        nodes = sorted(sim.nodes)
        what = rng.choice(["partition", "partition", "cut", "disconnect", "heal", "heal",
                           "unreliable", "long delays", "reliable"])
        if what == "partition":
            shuffled = nodes[:]
            rng.shuffle(shuffled)
            split = rng.randint(1, len(shuffled) - 1)
            groups = [sorted(shuffled[:split]), sorted(shuffled[split:])]
            sim.partition(*groups)
            self.note("partition", groups)
        elif what == "cut":
            src, dst = rng.sample(nodes, 2)
            sim.cut(src, dst)
            self.note("cut", src, "->", dst)
        elif what == "disconnect":
            node = rng.choice(nodes)
            sim.disconnect(node)
            self.note("disconnect", node)
        elif what == "heal":
            sim.heal()
            self.note("heal")
        elif what == "unreliable":
            sim.network = NetworkFaults.unreliable()
            self.note("network unreliable")
        elif what == "long delays":
            sim.network = NetworkFaults(max_delay_ms=30, drop_rate=0.05, duplicate_rate=0.05,
                                        long_delay_rate=0.05, long_delay_ms=2000)
            self.note("network with long delays")
        else:
            sim.network = NetworkFaults()
            self.note("network reliable")

    def act_leadership(self) -> None:
        leader, core = self.leader_core()
        if self.rng.random() < 0.7 and core is not None:
            targets = sorted(core.membership.voters - {leader})
            if not targets:
                return
            target = self.rng.choice(targets)
            try:
                self.sim.act(leader, lambda c: c.transfer_leadership(target))
                self.note("transfer leadership", leader, "->", target)
            except (NotLeader, ValueError) as refused:
                self.note("transfer leadership", leader, "->", target, "refused:", refused)
        else:
            live = self.live()
            if live:
                node = self.rng.choice(live)
                self.sim.act(node, lambda c: c.campaign())
                self.note("campaign", node)

    def act_membership(self) -> None:
        leader, core = self.leader_core()
        if core is None:
            return
        membership, rng = core.membership, self.rng
        options = []
        if self.next_server <= MAX_SERVERS:
            options.append("add_learner")
        if membership.learners:
            options += ["promote", "promote", "remove learner"]
        if len(membership.voters) > MIN_VOTERS:
            options += ["remove voter", "remove voter"]
        if not options:
            return
        what = rng.choice(options)
        if what == "add_learner":
            node = f"n{self.next_server}"
            change = ConfigChange("add_learner", node)
        elif what == "promote":
            node = rng.choice(sorted(membership.learners))
            change = ConfigChange("promote", node)
        elif what == "remove learner":
            change = ConfigChange("remove", rng.choice(sorted(membership.learners)))
        else:
            change = ConfigChange("remove", rng.choice(sorted(membership.voters)))
        try:
            if change.action == "add_learner":
                # The server starts blank before the change that adds it is proposed,
                # as in the design's "Node addition".
                if change.node not in self.sim.nodes:
                    self.sim.add_node(change.node)
                    self.next_server += 1
            index = self.sim.propose_membership(change, leader)
        except (NotLeader, ValueError) as refused:
            self.note("membership", change.action, change.node, "at", leader, "refused:", refused)
            return
        if change.action == "remove":
            self.pending_removals[change.node] = (index, change.encode())
        self.note("membership", change.action, change.node, "at", leader, "index", index)

    def act_snapshots(self) -> None:
        self.sim.snapshot_every = self.rng.choice([None, 3, 5, 20, 50])
        self.note("snapshot_every", self.sim.snapshot_every)

    def act_read(self) -> None:
        leader = self.sim.leader()
        if leader is None:
            return
        context = ("read", self.seed, len(self.reads))
        required = self.highest_committed()
        try:
            self.sim.read_index(context, leader)
        except NotLeader:
            return
        self.reads[context] = required
        self.note("read index at", leader, "must see", required)

    def act_retire(self) -> None:
        """Crash one server whose removal committed (it has been running, not disrupting)."""
        running = [n for n in sorted(self.retired) if self.sim.nodes[n].alive]
        if running:
            node = self.rng.choice(running)
            self.sim.crash(node)
            self.note("retire", node)

    ACTIONS = {
        "propose": 30, "run": 10, "crash": 8, "restart": 10, "network": 14,
        "leadership": 5, "membership": 10, "snapshots": 4, "read": 6, "retire": 3,
        "figure8": 8, "bounces": 5,
    }

    # -- bookkeeping after every step ---------------------------------------------------------
    def settle_removals(self) -> None:
        committed = self.sim.safety.committed
        for node, (index, data) in sorted(self.pending_removals.items()):
            entry = committed.get(index)
            if entry is None:
                continue
            del self.pending_removals[node]
            if entry.data == data:
                self.retired.add(node)
                self.note("removal of", node, "committed at", index)
                # Without the lease a removed server that missed its removal keeps
                # calling elections in ever higher terms (dissertation §4.2.3): that is
                # a known limit of Raft, not a bug, so it goes at once.
                if not self.config.check_quorum and self.sim.nodes[node].alive:
                    self.sim.crash(node)
                    self.note("retire", node)

    def check_reads(self) -> None:
        for node_id in sorted(self.sim.nodes):
            states = self.sim.nodes[node_id].read_states
            for state in states[self.read_cursor.get(node_id, 0):]:
                required = self.reads.get(state.context)
                if required is not None and state.index < required:
                    raise SafetyViolation(
                        "linearizable reads",
                        f"{node_id} answered read {state.context} at index {state.index}, but "
                        f"index {required} was committed before the read was asked for",
                        seed=self.seed, trace=self.sim.format_trace())
            self.read_cursor[node_id] = len(states)

    def coverage(self) -> Counter:
        sim = self.sim
        committed = sim.safety.committed.values()
        return Counter({
            "terms with a leader": len(sim.safety.leader_of_term),
            "snapshots installed": sim.sent["InstallSnapshot"],
            "leadership handovers": sim.sent["TimeoutNow"],
            "membership changes committed": sum(1 for e in committed if e.kind == EntryKind.CONFIG),
            "servers added": len(sim.nodes) - len(sim.bootstrap.voters),
            "servers retired": len(self.retired),
            "reads answered": sum(len(n.read_states) for n in sim.nodes.values()),
            "boots": sum(n.incarnation for n in sim.nodes.values()),
        })

    # -- the run --------------------------------------------------------------------------------
    def storm(self) -> None:
        names, weights = zip(*self.ACTIONS.items())
        for _ in range(self.steps):
            action = self.rng.choices(names, weights)[0]
            self.actions[action] += 1
            if action == "run":
                ms = self.rng.randint(100, 2000)
                self.note("run", ms, "ms")
                self.sim.run(ms)
            else:
                getattr(self, f"act_{action}")()
                self.sim.run(self.rng.randint(10, 300))
            self.settle_removals()
            self.check_reads()

    def heal(self) -> None:
        """Everything repaired; then a leader and one more command on every member."""
        sim = self.sim
        sim.heal()
        sim.network = NetworkFaults()
        self.note("final: heal, reliable network, restart", self.crashed())
        deadline = sim.now_ms + HEAL_TIMEOUT_MS

        def settled() -> bool:
            leader, core = self.leader_core()
            return core is not None and core.log.term_at(core.commit_index) == core.term

        if not self.run_reviving(settled, deadline):
            raise LivenessFailure(f"no leader committed an entry of its term within "
                                  f"{HEAL_TIMEOUT_MS} ms of healing (seed {self.seed})")
        data = b"final/%d" % self.seed
        index = sim.one(data, 1, timeout_ms=max(1, deadline - sim.now_ms))
        _, core = self.leader_core()
        members = sorted(core.membership.members) if core else []

        def everywhere() -> bool:
            return all(sim.nodes[n].alive and sim.nodes[n].applied_index >= index for n in members)

        if not self.run_reviving(everywhere, deadline):
            behind = {n: (sim.nodes[n].alive, sim.nodes[n].applied_index) for n in members}
            raise LivenessFailure(f"the final command (index {index}) was not applied by every "
                                  f"member {members} in time: (alive, applied) {behind} "
                                  f"(seed {self.seed})")
        self.settle_removals()
        self.check_reads()
        self.note("final command applied at", index, "by", members)

    def run_reviving(self, goal, deadline: int) -> bool:
        """Run until ``goal()``, restarting every crashed server (retired ones excepted) as
        soon as it is down: one armed by ``crash_while_persisting`` dies once more at its
        next Ready, whenever that comes."""
        sim = self.sim
        while True:
            for node in self.crashed():
                sim.restart(node)
                self.note("final: restart", node)
            sim.run_until(lambda: goal() or bool(self.crashed()),
                          timeout_ms=max(0, deadline - sim.now_ms))
            self.settle_removals()
            if not self.crashed() or sim.now_ms >= deadline:
                return goal() and not self.crashed()


def _describe(config: RaftConfig, snapshot_every, voters: int) -> str:
    return (f"{voters} voters, election_ticks={config.election_ticks}, "
            f"pre_vote={config.pre_vote}, check_quorum={config.check_quorum}, "
            f"max_entries={config.max_entries_per_message}, "
            f"max_inflight={config.max_inflight_messages}, snapshot_every={snapshot_every}")


def run_campaign(seed: int, steps: int = DEFAULT_STEPS) -> CampaignResult:
    """Run campaign ``seed`` for ``steps`` steps and return its verdict (never raises for
    what the run finds). The same arguments replay the same run."""
    campaign = _Campaign(seed, steps)
    result = CampaignResult(seed, steps, config=_describe(
        campaign.config, campaign.sim.snapshot_every, len(campaign.sim.bootstrap.voters)))
    try:
        campaign.storm()
        campaign.heal()
    except SafetyViolation as violation:
        result.kind, result.failure = "safety", str(violation).split("\nlast events:")[0]
    except Livelock as livelock:
        result.kind, result.failure = "livelock", str(livelock).split("\nlast events:")[0]
    except (LivenessFailure, TimeoutError) as stuck:
        result.kind, result.failure = "liveness", str(stuck)
    except Exception:       # noqa: BLE001 -- the verdict must name whatever broke
        result.kind, result.failure = "error", traceback.format_exc()
    sim = campaign.sim
    result.schedule = campaign.schedule
    result.trace = sim.format_trace()
    result.fingerprint = sim.fingerprint
    result.virtual_ms = sim.now_ms
    result.commits = campaign.highest_committed()
    result.actions = campaign.actions
    result.coverage = campaign.coverage()
    return result


def run_campaigns(seeds: Iterable[int], steps: int = DEFAULT_STEPS, *,
                  progress: bool = True) -> list[CampaignResult]:
    """Run many seeds (a tqdm bar with ``progress``); returns every result, failed or not."""
    seeds = list(seeds)
    results = []
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(seeds), desc="raft campaign", unit="seed")
    failed = 0
    try:
        for seed in seeds:
            result = run_campaign(seed, steps)
            results.append(result)
            if not result.ok:
                failed += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(failed=failed, seed=seed)
    finally:
        if bar is not None:
            bar.close()
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Randomized fault campaign for the Raft core on the deterministic simulator.")
    parser.add_argument("--seeds", type=int, default=400, help="how many seeds to run")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="steps per seed")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    results = run_campaigns(range(args.first_seed, args.first_seed + args.seeds), args.steps,
                            progress=not args.no_progress)
    failed = [r for r in results if not r.ok]
    for result in failed:
        print(result.report(), end="\n\n")
    kinds = Counter(r.kind for r in results)
    print(f"{len(results)} seeds x {args.steps} steps: " +
          ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items())))
    print("exercised:", ", ".join(f"{what} {count}" for what, count in
                                  sum((r.coverage for r in results), Counter()).items()))
    if failed:
        print("failing seeds:", " ".join(str(r.seed) for r in failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
