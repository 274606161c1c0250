"""MIT 6.824's Raft test harness (``config.go``) on the deterministic simulator.

The labs drive real goroutines against the wall clock; here the same checks run on the
simulator's virtual milliseconds, so a scenario is reproduced bit for bit by its seed:

* ``check_one_leader`` / ``check_no_leader`` / ``check_terms`` -- cfg.checkOneLeader & co.,
  judged (as there) only among *connected* servers: a cut-off server may still believe
  it leads until CheckQuorum tells it otherwise;
* ``one`` -- cfg.one (sim.one), failing with the seed and the trace instead of raising
  TimeoutError; ``wait_committed`` -- cfg.wait;
* ``Actors`` -- the labs' concurrent clients as generators that yield how many virtual
  milliseconds they sleep (``one_actor`` is cfg.one written that way);
* ``record_deliveries`` -- what was delivered to whom, for counting rejections.

Every failure message carries the seed and the tail of the trace (``why``): a failing
scenario is rerun with that seed, and nothing else.
"""

from __future__ import annotations

import heapq
from typing import Callable, Generator, Iterator

from workbench.raft import Message, RaftConfig, Role
from workbench.raft.sim import NetworkFaults, Simulation

# The labs' timing: at most ten heartbeats a second (6.824 asks for no more), election
# timeouts drawn from [500, 1000) ms -- within the tester's generous one second.
TICK_MS = 50
LAB_CONFIG = RaftConfig(election_ticks=10, heartbeat_ticks=2)
ELECTION_TIMEOUT_MS = 1000          # 6.824's RaftElectionTimeout

# An actor's body: yields the milliseconds it sleeps, may return a value.
Actor = Generator[int, None, object]


def lab(nodes: int = 3, *, seed, unreliable: bool = False, **kwargs) -> Simulation:
    """A cluster as 6.824's ``make_config`` builds it: ``nodes`` servers, lab timing."""
    kwargs.setdefault("config", LAB_CONFIG)
    kwargs.setdefault("tick_ms", TICK_MS)
    if unreliable:
        kwargs.setdefault("network", NetworkFaults.unreliable())
    return Simulation(nodes, seed=seed, **kwargs)


def why(sim: Simulation, message: str) -> str:
    """An assertion message that lets the failure be replayed: the seed and the trace."""
    return f"{message} (seed {sim.seed!r})\nlast events:\n{sim.format_trace()}"


# -- who is who -----------------------------------------------------------------------------

def servers(sim: Simulation) -> list[str]:
    return sorted(sim.nodes)


def peer(sim: Simulation, node: str, k: int) -> str:
    """6.824's ``(node + k) % servers``."""
    ids = servers(sim)
    return ids[(ids.index(node) + k) % len(ids)]


def connected(sim: Simulation) -> list[str]:
    """Live servers not cut off by ``disconnect`` (6.824's ``cfg.connected[i]``)."""
    return [n for n in servers(sim) if sim.nodes[n].alive and n not in sim.disconnected]


def crashed(sim: Simulation) -> list[str]:
    return [n for n in servers(sim) if not sim.nodes[n].alive]


def term_of(sim: Simulation, node: str) -> int:
    return sim.nodes[node].core.term


def role_of(sim: Simulation, node: str) -> Role:
    return sim.nodes[node].core.role


# -- cfg.checkOneLeader and friends -----------------------------------------------------------

def connected_leaders(sim: Simulation) -> dict[int, list[str]]:
    """Term -> the connected servers that believe they lead in it."""
    by_term: dict[int, list[str]] = {}
    for n in connected(sim):
        if role_of(sim, n) is Role.LEADER:
            by_term.setdefault(term_of(sim, n), []).append(n)
    return by_term


def check_one_leader(sim: Simulation, *, attempts: int = 10, pause_ms: int = 500) -> str:
    """cfg.checkOneLeader: up to ``attempts`` times, let ``pause_ms`` of virtual time pass
    and look among the connected servers; no term may have two leaders, and the leader
    of the newest term is returned. Fails after ``attempts * pause_ms`` without one."""
    for _ in range(attempts):
        sim.run(pause_ms)
        by_term = connected_leaders(sim)
        for term, leaders in by_term.items():
            assert len(leaders) == 1, why(sim, f"term {term} has {len(leaders)} leaders: {leaders}")
        if by_term:
            return by_term[max(by_term)][0]
    raise AssertionError(why(sim, f"no leader among the connected servers {connected(sim)} "
                                  f"within {attempts * pause_ms} ms"))


def check_no_leader(sim: Simulation) -> None:
    """cfg.checkNoLeader: no connected server believes it leads."""
    leaders = connected_leaders(sim)
    assert not leaders, why(sim, f"expected no leader among {connected(sim)}, found {leaders}")


def check_terms(sim: Simulation) -> int:
    """cfg.checkTerms: every connected server is in the same term; that term."""
    terms = {n: term_of(sim, n) for n in connected(sim)}
    assert len(set(terms.values())) == 1, why(sim, f"servers disagree on the term: {terms}")
    return next(iter(terms.values()))


# -- agreement --------------------------------------------------------------------------------

def one(sim: Simulation, data: bytes, expected: int, *, retry: bool = True,
        timeout_ms: int = 10_000) -> int:
    """cfg.one: ``data`` committed on at least ``expected`` servers; its index."""
    try:
        return sim.one(data, expected, timeout_ms=timeout_ms, retry=retry)
    except TimeoutError:
        raise AssertionError(why(sim, f"{data!r} was not committed on {expected} servers "
                                      f"within {timeout_ms} ms")) from None


def committed_on(sim: Simulation, index: int) -> int:
    """cfg.nCommitted's count: how many servers applied ``index``."""
    return sim.committed_count(index)[0]


def wait_committed(sim: Simulation, index: int, n: int, *, start_term: int | None = None,
                   timeout_ms: int = 10_000) -> bytes | None:
    """cfg.wait: run until ``n`` servers applied ``index``; the command there. None if
    some server moved past ``start_term`` first (the caller's proposals may be lost)."""
    def settled() -> bool:
        if committed_on(sim, index) >= n:
            return True
        return start_term is not None and any(term_of(sim, s) > start_term for s in connected(sim))

    sim.run_until(settled, timeout_ms=timeout_ms)
    count, data = sim.committed_count(index)
    if count >= n:
        return data
    if start_term is not None and any(term_of(sim, s) > start_term for s in connected(sim)):
        return None
    raise AssertionError(why(sim, f"index {index} applied on {count} servers, not {n}, "
                                  f"within {timeout_ms} ms"))


# -- concurrent clients on virtual time ------------------------------------------------------

class Actors:
    """Run generators as the labs run goroutines: each yields how many virtual ms it
    sleeps; the simulation advances to the earliest wake-up, and that actor resumes.
    Actors wake in order of time, then of spawning: deterministic."""

    def __init__(self, sim: Simulation):
        self.sim = sim
        self._queue: list[tuple[int, int, Iterator[int]]] = []
        self._spawned = 0
        self.results: dict[int, object] = {}

    def spawn(self, actor: Actor) -> int:
        self._spawned += 1
        heapq.heappush(self._queue, (self.sim.now_ms, self._spawned, actor))
        return self._spawned

    def run(self) -> dict[int, object]:
        """Until every actor has returned; their return values by spawn number."""
        while self._queue:
            wake, number, actor = heapq.heappop(self._queue)
            if wake > self.sim.now_ms:
                self.sim.run(wake - self.sim.now_ms)
            try:
                sleep_ms = next(actor)
            except StopIteration as done:
                self.results[number] = done.value
                continue
            heapq.heappush(self._queue, (self.sim.now_ms + max(1, sleep_ms), number, actor))
        return self.results


def one_actor(sim: Simulation, data: bytes, expected: int, *, retry: bool = True,
              timeout_ms: int = 10_000) -> Actor:
    """cfg.one as an actor: propose at a connected leader (trying the servers in turn),
    poll every 20 ms for two seconds, retry until ``timeout_ms``. Returns the index."""
    ids = servers(sim)
    start, starts = sim.now_ms, 0
    while sim.now_ms - start < timeout_ms:
        index = None
        for _ in ids:
            starts = (starts + 1) % len(ids)
            node = ids[starts]
            if node in connected(sim) and role_of(sim, node) is Role.LEADER:
                index = sim.propose(data, node)
                if index is not None:
                    break
        if index is None:
            yield 50
            continue
        proposed = sim.now_ms
        while sim.now_ms - proposed < 2000:
            count, there = sim.committed_count(index)
            if count >= expected and there == data:
                return index
            yield 20
        if not retry:
            break
    raise AssertionError(why(sim, f"{data!r} was not committed on {expected} servers "
                                  f"within {timeout_ms} ms"))


# -- looking at the wire ----------------------------------------------------------------------

def record_deliveries(sim: Simulation, into: list[Message] | None = None) -> list[Message]:
    """From now on, append every message delivered to a live server to the returned list
    (wraps each current core's ``step``: a server restarted later is not recorded)."""
    delivered = [] if into is None else into
    for node in sim.nodes.values():
        if node.alive:
            node.core.step = _recording(node.core.step, delivered)
    return delivered


def _recording(step: Callable[[Message], None], delivered: list[Message]):
    def step_and_record(message: Message) -> None:
        delivered.append(message)
        step(message)
    return step_and_record
