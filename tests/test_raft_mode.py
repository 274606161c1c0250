"""The raft mode on real nodes, scenario by scenario after MIT 6.5840's Raft lab tests:
election (3A), agreement (3B), persistence and churn (3C) -- driven through the Cluster
API over loopback sockets, with the wall clock, kills, partitions and one-way cuts.

Where the lab checks what ``cfg.one`` committed, these tests record every client
operation the test sends as a Jepsen history (:class:`Ops`) and let the checkers judge
it after healing: no acknowledged write lost, no dirty, aborted or stale read, a
linearizable register. The lab's "agreement" is then also checked node by node: every
node's keyspace equals the leader's once it applied the leader's commit index.

Timing is the mode's default (heartbeat 50 ms, election timeout 500 ms) unless a test
says otherwise; every wait is for a condition, bounded by a generous timeout.
``WORKBENCH_RAFT_CHURN_SECONDS`` sizes the churn runs (default 6).
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time

import pytest
import redis

import workbench as wb
from conftest import wait_for
from workbench import events as ev
from workbench.history import checkers
from workbench.history.model import WRITE
from workbench.history.workloads import Recorder, classify, final_reads, run_clients
from workbench.storage.raft_records import RaftLogCorrupt

CHURN_SECONDS = float(os.environ.get("WORKBENCH_RAFT_CHURN_SECONDS", "6"))
ANOMALIES = ("lost-writes", "dirty-reads", "aborted-reads", "stale-reads")
PING_AND_GET_K = b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"


# -- reading a shard's state ---------------------------------------------------------------

def raft_info(c, node) -> dict:
    """``INFO raft`` of one node, over its client port."""
    return c.client(node).info("raft")


def keyspace(c, node) -> dict[str, str]:
    """Node's db 0 strings, read on the loop thread: what it applied, whatever its role."""
    node = c._resolve(node)

    def read():
        data = node.server.keyspace.dbs[0].data
        return {k.decode(): v.decode() for k, v in data.items() if isinstance(v, bytes)}
    return c.runtime.call(read)


def caught_up(c, node, leader=None) -> bool:
    """``node`` applied everything ``leader`` (default: the serving leader) committed."""
    state = c.raft_state()
    leader = leader or c.current_primary()
    if leader is None or not state[node.name]["alive"]:
        return False
    return state[node.name]["applied_index"] >= state[leader.name]["commit_index"]


def agreed(c) -> tuple[int, str] | None:
    """(term, leader) if every live node is in the same term and follows the same serving
    leader, else None."""
    leader = c.current_primary()
    if leader is None:
        return None
    state = {name: s for name, s in c.raft_state().items() if s["alive"]}
    seen = {(s["term"], s["leader"]) for s in state.values()}
    roles = sorted(s["role"] for s in state.values())
    if len(seen) != 1 or roles.count("leader") != 1:
        return None
    term, name = seen.pop()
    return (term, name) if name == leader.name else None


def converged(c) -> bool:
    """Every node up, following one leader, applied through its commit index, and
    holding exactly the leader's keyspace."""
    if agreed(c) is None or not all(caught_up(c, n) for n in c.nodes):
        return False
    leader = keyspace(c, c.current_primary())
    return all(keyspace(c, n) == leader for n in c.nodes)


# -- the test's own operations, recorded as a history ------------------------------------------

class Ops:
    """Register writes the test sends to a node it names, each recorded as a
    Jepsen operation (invoke, then ok / fail / info as :func:`classify` says); each op
    runs under a fresh process id, so threads may share one Ops. :meth:`verdicts` reads
    every key back from the leader the cluster settled on and runs the checkers."""

    def __init__(self, c):
        self.c = c
        self.recorder = Recorder()
        self.keys: list[str] = []
        self.acknowledged: dict[str, str] = {}
        self._values = itertools.count()
        self._lock = threading.Lock()

    def write(self, node, key: str, timeout: float = 5.0) -> tuple[str, Exception | None]:
        """SET ``key`` to a unique value on ``node``; (outcome, the error if any)."""
        node = self.c._resolve(node)
        with self._lock:
            value = f"{key}#{next(self._values)}"
            if key not in self.keys:
                self.keys.append(key)
        process = self.recorder.new_process()
        self.recorder.invoke(process, WRITE, key, value, node=node.name)
        try:
            self.c.client(node, socket_timeout=timeout).set(key, value)
        except redis.RedisError as err:
            outcome = classify(err)
            self.recorder.complete(process, outcome, error=str(err), node=node.name)
            return outcome, err
        self.recorder.complete(process, "ok", value, node=node.name)
        with self._lock:
            self.acknowledged[key] = value
        return "ok", None

    def verdicts(self) -> dict:
        final = final_reads(self.c, self.recorder, "register", self.keys, timeout=10)
        return checkers.summary(self.recorder.history, final)


def assert_clean(verdicts: dict) -> None:
    """No anomaly, and every register key linearizable (not merely unknown)."""
    found = {name: verdicts[name].anomalies[:3] for name in ANOMALIES
             if name in verdicts and verdicts[name].count}
    assert found == {}
    assert all(verdicts[name].valid for name in ANOMALIES if name in verdicts), \
        {name: verdicts[name].details for name in ANOMALIES if name in verdicts}
    assert verdicts["linearizable"].valid is True, verdicts["linearizable"].details


def events_of(c, *kinds):
    seen = []
    sub = c.events.subscribe(lambda e: seen.append(e) if isinstance(e, kinds) else None)
    return seen, sub


def new_leader(c, old, term: int):
    """Wait for a serving leader other than ``old`` in a term after ``term``."""
    def found():
        leader = c.current_primary()
        if leader is None or leader is old:
            return None
        return leader if c.raft_state()[leader.name]["term"] > term else None
    return wait_for(found, timeout=10, what=f"a new leader after term {term}")


# -- 3A: leader election ---------------------------------------------------------------------

def test_initial_election_elects_one_leader_that_every_node_names():
    """TestInitialElection3A: one leader within 2 s; every node agrees on it and the term."""
    started = time.monotonic()
    with wb.Cluster(mode="raft", nodes=3) as c:
        leader = c.primary(timeout=2)
        assert time.monotonic() - started < 2
        term, name = wait_for(lambda: agreed(c), timeout=2, what="every node to name the leader")
        assert name == leader.name and term >= 1
        infos = {n.name: raft_info(c, n) for n in c.nodes}
        assert sorted(i["raft_role"] for i in infos.values()) == ["follower", "follower", "leader"]
        assert {(i["raft_term"], i["raft_leader"], i["raft_leader_port"])
                for i in infos.values()} == {(term, leader.name, leader.port)}
        assert [n.role for n in c.nodes].count("primary") == 1
        assert infos[leader.name]["raft_serving"] == 1 and infos[leader.name]["raft_voters"] == 3
        assert all(i["raft_serving"] == 0 for n, i in infos.items() if n != leader.name)


def test_a_killed_leader_is_replaced_and_rejoins_as_a_follower_of_the_newer_term():
    """TestReElection3A, the crash half: the two left elect a leader in a newer term; the
    old one restarts from its log and follows it."""
    with wb.Cluster(mode="raft", nodes=3) as c:
        ops = Ops(c)
        old = c.primary()
        term = raft_info(c, old)["raft_term"]
        assert ops.write(old, "before") == ("ok", None)
        old.kill()
        leader = new_leader(c, old, term)
        assert ops.write(leader, "after") == ("ok", None)
        old.restart()
        new_term, name = wait_for(lambda: agreed(c), what="the restarted leader to follow")
        assert name == leader.name and new_term > term
        info = raft_info(c, old)
        assert info["raft_role"] == "follower" and info["raft_term"] == new_term
        wait_for(lambda: converged(c), what="the restarted node to catch up")
        assert keyspace(c, old) == ops.acknowledged
        assert_clean(ops.verdicts())


def test_a_leader_cut_off_steps_down_and_follows_the_newer_term_once_healed():
    """TestReElection3A, the partition half: the majority elects a new leader; the cut-off
    one steps down by itself (check-quorum), and after the heal follows the new term."""
    with wb.Cluster(mode="raft", nodes=3) as c:
        ops = Ops(c)
        old = c.primary()
        term = raft_info(c, old)["raft_term"]
        c.partition([old], [n for n in c.nodes if n is not old])
        leader = new_leader(c, old, term)
        assert ops.write(leader, "k") == ("ok", None)
        wait_for(lambda: raft_info(c, old)["raft_role"] != "leader", timeout=5,
                 what="the cut-off leader to step down (check-quorum)")
        assert old.role == "replica" and raft_info(c, old)["raft_step_downs"] == 1
        c.heal()
        new_term, name = wait_for(lambda: agreed(c), what="the old leader to follow")
        assert name == leader.name and new_term > term
        assert raft_info(c, old)["raft_term"] == new_term
        wait_for(lambda: converged(c), what="the old leader to catch up")
        assert keyspace(c, old) == ops.acknowledged
        assert_clean(ops.verdicts())


def test_a_healthy_leader_under_steady_writes_keeps_its_term():
    """No needless elections: the claim is that nothing happens, so the test writes for
    about two election timeouts and then checks that no term, leader or election moved."""
    with wb.Cluster(mode="raft", nodes=3) as c:
        ops = Ops(c)
        leader = c.primary()
        term, _ = wait_for(lambda: agreed(c), what="agreement")
        won = {n.name: raft_info(c, n)["raft_elections_won"] for n in c.nodes}
        ends = time.monotonic() + 2 * 0.5
        i = 0
        while time.monotonic() < ends:
            assert ops.write(leader, f"k{i % 5}") == ("ok", None)
            i += 1
        assert i > 20
        assert agreed(c) == (term, leader.name)
        assert {n.name: raft_info(c, n)["raft_elections_won"] for n in c.nodes} == won
        assert all(raft_info(c, n)["raft_step_downs"] == 0 for n in c.nodes)
        assert_clean(ops.verdicts())


def test_a_paused_leader_answers_no_new_client_and_is_replaced():
    """``pause()`` is a SIGSTOP: nothing is read, from old or new connections. An
    application that keeps reconnecting to the paused leader (it found it first) gets no
    answer, and the two others elect a new leader within a few election timeouts.

    Reproduction of a bug: uvloop ignores ``pause_reading()`` called from
    ``connection_made``, so a paused node read and executed new connections' commands;
    the paused leader then sent AppendEntries for each read (ReadIndex round) or write,
    which kept resetting the followers' election timers: no leader was elected."""
    with wb.Cluster(mode="raft", nodes=3) as c:
        old = c.primary()
        old.pause()
        answered, new = [], None
        deadline = time.monotonic() + 3          # six election timeouts
        while new is None and time.monotonic() < deadline:
            with socket.create_connection(("127.0.0.1", old.port), timeout=1) as s:
                s.sendall(PING_AND_GET_K)
                s.settimeout(0.1)
                try:
                    answered.append(s.recv(100))
                except socket.timeout:
                    pass
            leader = c.current_primary()
            new = leader if leader is not old else None
        old.resume()
        assert answered == [] and new is not None, (answered[:2], new)


# -- 3B: agreement ---------------------------------------------------------------------------

def test_a_reconnected_follower_applies_what_it_missed_and_serves_it_with_readonly():
    """TestFailAgree3B: a follower cut off misses N writes (the other two commit them);
    healed, it applies through the leader's commit index and holds all N."""
    with wb.Cluster(mode="raft", nodes=3, raft_read_mode="follower") as c:
        ops = Ops(c)
        leader = c.primary()
        follower = next(n for n in c.nodes if n is not leader)
        c.partition([follower], [n for n in c.nodes if n is not follower])
        for i in range(30):
            assert ops.write(leader, f"k{i}") == ("ok", None)
        assert not caught_up(c, follower)
        assert keyspace(c, follower) == {}
        c.heal()
        wait_for(lambda: caught_up(c, follower), what="the follower to apply what it missed")
        reader = c.client(follower, single_connection_client=True)
        assert reader.execute_command("READONLY") is True
        assert {f"k{i}": reader.get(f"k{i}") for i in range(30)} == ops.acknowledged
        assert keyspace(c, follower) == ops.acknowledged
        assert raft_info(c, follower)["raft_commit_index"] == raft_info(c, leader)["raft_commit_index"]
        assert_clean(ops.verdicts())


def test_no_commit_without_a_majority_of_five():
    """TestFailNoAgree3B: the leader and one follower are cut off from the other three.
    The leader's write never commits: its reply is the indefinite error or a closed
    connection, and neither minority node's commit index moves. The majority elects a
    leader and commits; after the heal the minority's write is nowhere."""
    with wb.Cluster(mode="raft", nodes=5) as c:
        ops = Ops(c)
        leader = c.primary()
        term = raft_info(c, leader)["raft_term"]
        assert ops.write(leader, "before") == ("ok", None)
        buddy = next(n for n in c.nodes if n is not leader)
        majority = [n for n in c.nodes if n not in (leader, buddy)]
        c.partition([leader, buddy], majority)
        minority_commit = {n.name: c.raft_state()[n.name]["commit_index"] for n in (leader, buddy)}
        outcome, error = ops.write(leader, "minority")
        assert outcome == "info", error
        assert isinstance(error, redis.ConnectionError) or "outcome unknown" in str(error), error
        assert {n.name: c.raft_state()[n.name]["commit_index"]
                for n in (leader, buddy)} == minority_commit
        winner = new_leader(c, leader, term)
        assert winner in majority
        assert ops.write(winner, "majority") == ("ok", None)
        assert {n.name: c.raft_state()[n.name]["commit_index"]
                for n in (leader, buddy)} == minority_commit
        c.heal()
        wait_for(lambda: converged(c), what="the five nodes to converge")
        assert all("minority" not in keyspace(c, n) for n in c.nodes)
        assert keyspace(c, buddy) == ops.acknowledged
        assert_clean(ops.verdicts())


def test_a_rejoining_old_leader_rolls_back_its_uncommitted_write():
    """TestRejoin3B with the workbench's write-behind: the isolated leader executes a
    write at once and holds its reply; it never commits. The majority elects a new
    leader and commits its own writes. The old leader steps down -- its client is
    disconnected (outcome unknown), its keyspace rolled back to the committed state --
    and after the heal every node holds exactly the new leader's keyspace.

    The longer election timeout leaves time to see the executed write before it goes."""
    with wb.Cluster(mode="raft", nodes=3, election_timeout_ms=1000) as c:
        ops = Ops(c)
        stepped, sub = events_of(c, ev.RaftSteppedDown)
        old = c.primary()
        term = raft_info(c, old)["raft_term"]
        assert ops.write(old, "k") == ("ok", None)
        c.partition([old], [n for n in c.nodes if n is not old])
        held = []
        writer = threading.Thread(target=lambda: held.append(ops.write(old, "k", timeout=10)))
        writer.start()
        wait_for(lambda: keyspace(c, old)["k"] != ops.acknowledged["k"], timeout=5,
                 what="the isolated leader to execute the write")
        leader = new_leader(c, old, term)
        for i in range(5):
            assert ops.write(leader, f"new{i}") == ("ok", None)
        assert ops.write(leader, "k") == ("ok", None)
        writer.join(10)
        assert not writer.is_alive()
        (outcome, error), = held
        assert outcome == "info", error
        c.heal()
        wait_for(lambda: converged(c), what="the old leader to follow the new one")
        new_term, _ = agreed(c)
        assert keyspace(c, old) == keyspace(c, leader) == ops.acknowledged
        info = raft_info(c, old)
        assert info["raft_step_downs"] == 1 and info["raft_rolled_back_writes"] >= 1
        wait_for(lambda: [e.node for e in stepped] == [old.name], what="one RaftSteppedDown")
        # in its own term (check-quorum) or in the new one (heard at the heal): both are
        # steps down; what matters is that the executed write was discarded
        assert stepped[0].discarded_entries >= 1 and term <= stepped[0].term <= new_term
        sub.close()
        assert_clean(ops.verdicts())


# -- 3C: persistence and churn -------------------------------------------------------------------

def test_every_acknowledged_write_survives_a_power_loss_of_every_node():
    """TestPersist1 3C: every node loses power (unfsynced bytes are gone) and restarts
    from its Raft log; a leader is elected and every acknowledged write is there."""
    with wb.Cluster(mode="raft", nodes=3) as c:
        ops = Ops(c)
        leader = c.primary()
        term = raft_info(c, leader)["raft_term"]
        for i in range(30):
            assert ops.write(leader, f"k{i}") == ("ok", None)
        for node in c.nodes:
            node.kill(power_loss=True)
        assert sum(n.lost_bytes_total for n in c.nodes) == 0   # every Ready was fsynced
        for node in c.nodes:
            node.restart()
        assert c.primary(timeout=10) is not None
        wait_for(lambda: converged(c), what="the restarted shard to converge")
        new_term, _ = agreed(c)
        assert new_term > term
        assert all(keyspace(c, n) == ops.acknowledged for n in c.nodes)
        assert_clean(ops.verdicts())


def churn_schedule(c, duration: float):
    """The nemesis of the churn runs: at fixed fractions of ``duration``, kill the leader
    (power loss) and bring it back, cut the leader off and heal, kill a follower and --
    while it is down -- silence the leader towards the other one (a one-way cut: no
    quorum in either direction), then bring the dead one back and heal. Returns
    ``during(elapsed)`` for run_clients and the log of what ran."""
    log: list[tuple[float, str]] = []
    state: dict = {}

    def leader():
        return c.current_primary() or next(n for n in c.nodes if n.alive)

    def kill_leader():
        state["killed"] = leader()
        state["killed"].kill(power_loss=True)
        return f"kill {state['killed'].name}"

    def restart_killed():
        state["killed"].restart()
        return f"restart {state['killed'].name}"

    def isolate_leader():
        target = leader()
        c.partition([target], [n for n in c.nodes if n is not target])
        return f"isolate {target.name}"

    def heal():
        c.heal()
        return "heal"

    def kill_follower():
        current = leader()
        state["killed"] = next(n for n in c.nodes if n is not current and n.alive)
        state["killed"].kill(power_loss=True)
        return f"kill {state['killed'].name}"

    def cut_leader_to_follower():
        current = leader()
        deaf = next(n for n in c.nodes if n is not current and n.alive)
        c.cut(current, deaf)
        return f"cut {current.name}->{deaf.name}"

    steps = [(0.1, kill_leader), (0.3, restart_killed), (0.4, isolate_leader),
             (0.6, heal), (0.65, kill_follower), (0.72, cut_leader_to_follower),
             (0.82, restart_killed), (0.9, heal)]
    pending = [(fraction * duration, action) for fraction, action in steps]

    def during(elapsed: float) -> None:
        while pending and elapsed >= pending[0][0]:
            _, action = pending.pop(0)
            log.append((round(elapsed, 2), action()))
    return during, log


@pytest.mark.parametrize("read_mode", ["readindex", "leader"])
def test_churn_of_kills_and_partitions_keeps_a_linearizable_register(read_mode):
    """TestFigure8Unreliable-like churn on real sockets: four clients on three register
    keys, plus a reader bound to each node, while leaders are killed, restarted and cut
    off. After healing and restarting everything, the checkers find no lost
    acknowledged write, no dirty, aborted or stale read, and a linearizable history."""
    with wb.Cluster(mode="raft", nodes=3, raft_read_mode=read_mode) as c:
        during, log = churn_schedule(c, CHURN_SECONDS)
        recorder = run_clients(c, "register", duration=CHURN_SECONDS, clients=4, keys=3,
                               seed=11, during=during, node_readers=1)
        c.heal()
        for node in c.nodes:
            if not node.alive:
                node.restart()
        final = final_reads(c, recorder, "register", recorder.keys, timeout=10)
        wait_for(lambda: converged(c), what="the shard to converge after the churn")
    assert [what.split()[0] for _, what in log] == ["kill", "restart", "isolate", "heal",
                                                    "kill", "cut", "restart", "heal"], log
    verdicts = checkers.summary(recorder.history, final)
    writes = [op for op in recorder.history.pairs() if op.f == WRITE]
    assert sum(op.type == "ok" for op in writes) > 20, log
    assert_clean(verdicts)


# -- reads -----------------------------------------------------------------------------------

def test_follower_reads_need_follower_mode_and_readonly():
    """In the default read mode a follower refuses reads, READONLY or not, and names
    the leader; with raft-read-mode follower a READONLY connection reads the follower's
    applied (committed) state, and READWRITE takes that back."""
    with wb.Cluster(mode="raft", nodes=3) as c:
        leader = c.primary()
        follower = next(n for n in c.nodes if n is not leader)
        c.client().set("k", "v")
        r = c.client(follower, single_connection_client=True)
        with pytest.raises(redis.ResponseError, match=rf"NOTLEADER .*leader {leader.name} "
                                                        rf"\(127.0.0.1:{leader.port}\)"):
            r.get("k")
        assert r.execute_command("READONLY") is True
        with pytest.raises(redis.ResponseError, match="NOTLEADER"):
            r.get("k")
    with wb.Cluster(mode="raft", nodes=3, raft_read_mode="follower") as c:
        leader = c.primary()
        follower = next(n for n in c.nodes if n is not leader)
        assert c.client().set("k", "v1") is True
        wait_for(lambda: caught_up(c, follower), what="the follower to apply k")
        r = c.client(follower, single_connection_client=True)
        with pytest.raises(redis.ResponseError, match="NOTLEADER"):
            r.get("k")
        assert r.execute_command("READONLY") is True
        assert r.get("k") == "v1"
        # cut off, it still answers -- from what it applied: committed, maybe stale
        c.partition([follower], [n for n in c.nodes if n is not follower])
        assert c.client().set("k", "v2") is True
        assert r.get("k") == "v1"
        with pytest.raises(redis.ReadOnlyError):
            r.set("k", "v3")
        c.heal()
        wait_for(lambda: r.get("k") == "v2", what="the follower to apply v2")
        assert r.execute_command("READWRITE") is True
        with pytest.raises(redis.ResponseError, match="NOTLEADER"):
            r.get("k")


@pytest.mark.parametrize("read_mode, counter", [("readindex", "raft_barrier_reads"),
                                                ("leader", "raft_lease_reads")])
def test_leader_reads_are_proven_by_a_quorum_round_or_a_lease(read_mode, counter):
    """readindex: each read waits for a quorum round (raft_read_rounds grows, no lease
    read); leader: reads within the lease answer at once (raft_lease_reads grows)."""
    with wb.Cluster(mode="raft", nodes=3, raft_read_mode=read_mode) as c:
        r = c.client()
        assert r.set("k", "v") is True
        before = raft_info(c, c.primary())
        assert before["raft_read_mode"] == read_mode
        if read_mode == "leader":       # the lease comes from a heartbeat round
            wait_for(lambda: raft_info(c, c.primary())["raft_read_rounds"] > 0,
                     what="a lease round")
        reads = [r.get("k") for _ in range(20)]
        assert reads == ["v"] * 20
        after = raft_info(c, c.primary())
        assert after[counter] - before[counter] >= (20 if read_mode == "readindex" else 1)
        if read_mode == "readindex":
            assert after["raft_read_rounds"] - before["raft_read_rounds"] >= 20
            assert after["raft_lease_reads"] == 0


# -- bad input -------------------------------------------------------------------------------

def test_commands_a_raft_shard_refuses():
    with wb.Cluster(mode="raft", nodes=3) as c:
        leader = c.primary()
        follower = next(n for n in c.nodes if n is not leader)
        r, f = c.client(), c.client(follower)
        for client in (r, f):
            with pytest.raises(redis.ResponseError, match="REPLICAOF not allowed in raft mode"):
                client.execute_command("REPLICAOF", "NO", "ONE")
            with pytest.raises(redis.ResponseError, match="REPLICAOF not allowed in raft mode"):
                client.execute_command("REPLICAOF", "127.0.0.1", str(leader.port))
        with socket.create_connection(("127.0.0.1", leader.port), timeout=5) as s:
            name = follower.name.encode()
            s.sendall(b"*2\r\n$12\r\nRAFT.PROMOTE\r\n$%d\r\n%s\r\n" % (len(name), name))
            assert s.recv(100) == b"-ERR %s is not a learner\r\n" % name
        with pytest.raises(redis.ResponseError, match="unknown node 'n9'"):
            r.execute_command("RAFT.ADDLEARNER", "n9")
        with pytest.raises(redis.ResponseError, match="n9 is not a voter"):
            r.execute_command("RAFT.TRANSFER", "n9")
        for command in ("RAFT.ADDLEARNER", "RAFT.PROMOTE", "RAFT.REMOVE", "RAFT.TRANSFER"):
            with pytest.raises(redis.ResponseError,
                               match=rf"NOTLEADER {follower.name} is not the Raft leader; "
                                     rf"the leader is {leader.name}"):
                f.execute_command(command, leader.name)
        with pytest.raises(redis.ReadOnlyError):
            f.set("k", "v")
        assert c.current_primary() is leader
        assert raft_info(c, leader)["raft_voters"] == 3 and raft_info(c, leader)["raft_learners"] == 0


def test_raft_configurations_a_cluster_refuses():
    with pytest.raises(ValueError, match="heartbeat_ms=400 must be at most half of "
                                         "election_timeout_ms=500"):
        wb.Cluster(mode="raft", heartbeat_ms=400, election_timeout_ms=500)
    with pytest.raises(ValueError, match="shard_nodes: the cluster sets it"):
        wb.Cluster(mode="raft", shard_nodes="n1=127.0.0.1:1")
    with pytest.raises(ValueError, match="raft_port: the cluster sets it"):
        wb.Cluster(mode="raft", raft_port=7000)


def test_a_corrupted_raft_log_refuses_to_start_and_the_others_serve_on():
    """A flipped byte in the middle of a follower's raft.log, with whole records after
    it, is no torn tail: the restart raises RaftLogCorrupt naming the file, the file is
    left as it was, and the two other nodes keep committing."""
    with wb.Cluster(mode="raft", nodes=3) as c:
        ops = Ops(c)
        leader = c.primary()
        victim = next(n for n in c.nodes if n is not leader)
        for i in range(20):
            assert ops.write(leader, f"k{i}") == ("ok", None)
        wait_for(lambda: caught_up(c, victim), what="the victim to hold every entry")
        victim.kill()
        path = os.path.join(victim.data_dir, "raft.log")
        with open(path, "rb") as f:
            damaged = bytearray(f.read())
        damaged[len(damaged) // 2] ^= 0xFF
        with open(path, "wb") as f:
            f.write(damaged)
        with pytest.raises(RaftLogCorrupt, match=rf"{path} at offset \d+: .*a whole record "
                                                 "follows") as refused:
            victim.restart()
        assert refused.value.path == path
        assert not victim.alive and victim.role == "down"
        with open(path, "rb") as f:
            assert f.read() == damaged
        assert c.current_primary() is leader
        for i in range(5):
            assert ops.write(leader, f"after{i}") == ("ok", None)
        assert_clean(ops.verdicts())
