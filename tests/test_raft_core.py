"""The Raft core against the sentences of the Raft paper (extended version, Figure 2) and
Ongaro's dissertation, in the manner of etcd's raft_paper_test.go.

Two ways of driving nodes: by hand (``node(...)`` and explicit messages) when a test is
about one server's rule, and through ``Net`` -- a tiny in-test network that handles every
Ready the way the caller's contract says (persist, then send, then apply) and delivers
every message at once, unless a node is cut off. The deterministic simulator with
virtual time, drops and reorders lives elsewhere.
"""

from __future__ import annotations

import random

import pytest

from workbench.raft import (AppendEntries, AppendResponse, ConfigChange, Entry, EntryKind,
                            HardState, InstallSnapshot, Membership, NotLeader,
                            PersistedState, RaftConfig, RaftNode, ReadState, Role, Snapshot,
                            SnapshotMeta, TimeoutNow, VoteRequest, VoteResponse, is_request)
from workbench.raft.sim import Disk

NO_PREVOTE = RaftConfig(pre_vote=False)


# -- helpers ---------------------------------------------------------------------------------

def members(voters: str, learners: str = "") -> Membership:
    """``members("abc", "d")``: one-letter node names."""
    return Membership(frozenset(voters), frozenset(learners))


def log_of(*terms: int, start: int = 1) -> tuple[Entry, ...]:
    """Command entries with the given terms, from index ``start`` on."""
    return tuple(Entry(start + i, term, EntryKind.COMMAND, b"e%d" % (start + i)) for i, term in enumerate(terms))


def node(name: str = "a", voters: str = "abc", *, entries=(), term: int = 0, voted_for=None,
         commit: int = 0, config: RaftConfig = RaftConfig(), seed: int = 0) -> RaftNode:
    persisted = PersistedState(HardState(term, voted_for, commit), None, tuple(entries))
    return RaftNode(name, membership=members(voters), persisted=persisted,
                    rng=random.Random(seed), config=config)


def vote_request(src, dst, term, last_index=0, last_term=0, **kw) -> VoteRequest:
    return VoteRequest(src=src, dst=dst, term=term, last_log_index=last_index, last_log_term=last_term, **kw)


def append(src, dst, term, prev_index, prev_term, entries=(), commit=0, **kw) -> AppendEntries:
    return AppendEntries(src=src, dst=dst, term=term, prev_log_index=prev_index,
                         prev_log_term=prev_term, entries=tuple(entries), leader_commit=commit, **kw)


def only(messages, kind):
    return [m for m in messages if isinstance(m, kind)]


def encode_state(commands: list[bytes]) -> bytes:
    return b"\n".join(commands)


def decode_state(data: bytes) -> list[bytes]:
    return data.split(b"\n") if data else []


class Net:
    """Nodes, their disks and state machines (lists of applied commands), and a network
    that delivers every message at once unless one end is cut off."""

    def __init__(self, voters: str = "abc", learners: str = "", *, config: RaftConfig = RaftConfig(),
                 seed: int = 0, persisted: dict[str, PersistedState] | None = None):
        self.bootstrap = members(voters, learners)
        self.config = config
        self.seed = seed
        self.nodes: dict[str, RaftNode] = {}
        self.disks: dict[str, Disk] = {}
        self.state: dict[str, list[bytes]] = {}
        self.reads: dict[str, list[ReadState]] = {}
        self.readies: dict[str, list] = {}
        self.sent: list = []                  # every message any node handed out
        self.committed: dict[int, Entry] = {}  # every committed entry any node reported
        self.cut: set[str] = set()
        self.drop = lambda message: False     # a test's extra rule for losing messages
        for name in sorted(self.bootstrap.members):
            self.start(name, (persisted or {}).get(name))

    def start(self, name: str, persisted: PersistedState | None = None) -> RaftNode:
        persisted = persisted or PersistedState()
        self.disks[name] = Disk(persisted.hard_state, persisted.snapshot, list(persisted.entries))
        return self.restart(name)

    def restart(self, name: str) -> RaftNode:
        """A crash and restart: memory is lost, the disk is read back."""
        disk = self.disks[name]
        self.nodes[name] = RaftNode(name, membership=self.bootstrap, persisted=disk.loaded(),
                                    rng=random.Random(f"{self.seed}/{name}/{len(self.sent)}"),
                                    config=self.config)
        self.state[name] = decode_state(disk.snapshot.data) if disk.snapshot else []
        self.reads.setdefault(name, [])
        self.readies.setdefault(name, [])
        return self.nodes[name]

    def handle(self, name: str) -> list:
        """Take one Ready from ``name`` and honour the contract; returns its messages."""
        ready = self.nodes[name].ready()
        self.readies[name].append(ready)
        self.disks[name].persist(ready)       # what storage does with a Ready
        if ready.restore_snapshot:
            self.state[name] = decode_state(ready.snapshot.data)
        for entry in ready.committed_entries:
            assert self.committed.setdefault(entry.index, entry) == entry, "two different entries committed"
            if entry.kind == EntryKind.COMMAND:
                self.state[name].append(entry.data)
        self.reads[name].extend(ready.read_states)
        self.sent.extend(ready.messages)
        return list(ready.messages)

    def deliverable(self, m) -> bool:
        return (m.dst in self.nodes and m.src not in self.cut and m.dst not in self.cut
                and not self.drop(m))

    def drain(self) -> None:
        for _ in range(10_000):
            outbox = [m for name in sorted(self.nodes) if self.nodes[name].has_ready()
                      for m in self.handle(name)]
            if not outbox:
                return
            for m in outbox:
                if self.deliverable(m):
                    self.nodes[m.dst].step(m)
        raise AssertionError("the network never went quiet")

    def tick(self, times: int = 1) -> None:
        for _ in range(times):
            for name in sorted(self.nodes):
                self.nodes[name].tick()
            self.drain()

    def elect(self, name: str) -> RaftNode:
        self.nodes[name].campaign()
        self.drain()
        assert self.nodes[name].role is Role.LEADER
        return self.nodes[name]

    def leaders(self) -> list[str]:
        return [name for name, n in self.nodes.items() if n.role is Role.LEADER and name not in self.cut]

    def sent_since(self, mark: int, kind=object, src=None, dst=None) -> list:
        return [m for m in self.sent[mark:] if isinstance(m, kind)
                and (src is None or m.src == src) and (dst is None or m.dst == dst)]


# -- messages ----------------------------------------------------------------------------------

def test_is_request_counts_requests_not_responses():
    snapshot = Snapshot(SnapshotMeta(1, 1, members("a")))
    requests = [vote_request("a", "b", 1), append("a", "b", 1, 0, 0),
                InstallSnapshot(src="a", dst="b", term=1, snapshot=snapshot), TimeoutNow(src="a", dst="b", term=1)]
    responses = [VoteResponse(src="b", dst="a", term=1, granted=True), AppendResponse(src="b", dst="a", term=1, success=True)]
    assert all(is_request(m) for m in requests)
    assert not any(is_request(m) for m in responses)


# -- elections (§5.2) ---------------------------------------------------------------------------

def ticks_until_campaign(seed: int) -> int:
    n = node(seed=seed)
    for elapsed in range(1, 100):
        n.tick()
        if n.role is not Role.FOLLOWER:
            return elapsed
    raise AssertionError("never campaigned")


def test_election_timeouts_are_chosen_randomly_from_a_fixed_interval():
    timeouts = [ticks_until_campaign(seed) for seed in range(40)]
    assert all(10 <= t < 20 for t in timeouts)
    assert len(set(timeouts)) >= 5
    assert ticks_until_campaign(7) == ticks_until_campaign(7)   # the injected rng is the only source


def test_follower_grants_at_most_one_vote_per_term_and_persists_it_before_answering():
    a = node("a")
    a.step(vote_request("b", "a", 1))
    ready = a.ready()
    assert ready.hard_state == HardState(1, "b", 0)           # persisted in the same Ready ...
    assert only(ready.messages, VoteResponse)[0].granted       # ... as the answer it protects
    a.step(vote_request("c", "a", 1))
    assert not only(a.ready().messages, VoteResponse)[0].granted
    a.step(vote_request("b", "a", 1))                          # a retransmission gets the same vote
    assert only(a.ready().messages, VoteResponse)[0].granted
    assert a.voted_for == "b"


@pytest.mark.parametrize("last_index, last_term, granted", [
    (3, 1, False),      # longer, but its last term is older
    (1, 2, False),      # same last term, shorter
    (2, 2, True),       # as up-to-date
    (1, 3, True),       # newer last term wins even if shorter
])
def test_voter_grants_only_to_candidates_with_an_up_to_date_log(last_index, last_term, granted):
    a = node("a", entries=log_of(1, 2), term=2)
    a.step(vote_request("b", "a", 3, last_index, last_term))
    assert only(a.ready().messages, VoteResponse)[0].granted is granted
    assert a.term == 3


def test_candidate_rejects_vote_request_with_stale_log_but_adopts_its_term():
    a = node("a", entries=log_of(1, 2), term=2, config=NO_PREVOTE)
    a.campaign()
    assert (a.role, a.term) == (Role.CANDIDATE, 3)
    a.ready()
    a.step(vote_request("b", "a", 4, last_index=5, last_term=1))
    response = only(a.ready().messages, VoteResponse)[0]
    assert not response.granted and response.term == 4
    assert (a.role, a.term, a.voted_for) == (Role.FOLLOWER, 4, None)


def test_candidate_wins_with_a_majority_and_new_leader_appends_noop():
    net = Net("abc")
    a = net.elect("a")
    assert a.term == 1
    for n in net.nodes.values():
        assert n.log.slice(1, 2) == (Entry(1, 1, EntryKind.NOOP, b""),)
        assert n.commit_index == 1 and n.leader_id == "a"


def test_candidate_steps_down_when_a_majority_refuses():
    a = node("a", config=NO_PREVOTE)
    a.campaign()
    for voter in "bc":
        a.step(VoteResponse(src=voter, dst="a", term=1, granted=False))
    assert (a.role, a.term) == (Role.FOLLOWER, 1)


def test_leader_sends_heartbeats_every_heartbeat_ticks_and_followers_do_not_time_out():
    net = Net("abc", config=RaftConfig(heartbeat_ticks=3))
    net.elect("a")
    mark = len(net.sent)
    net.tick(60)
    heartbeats = net.sent_since(mark, AppendEntries, src="a", dst="b")
    assert len(heartbeats) == 20
    assert net.leaders() == ["a"] and net.nodes["a"].term == 1


# -- pre-vote, check-quorum, the leader lease (§9.6, §6.2) ---------------------------------------

def test_prevote_does_not_raise_terms_of_rejoining_node():
    net = Net("abc")
    net.elect("a")
    net.cut = {"c"}
    net.tick(100)                                   # c times out again and again, alone
    assert net.nodes["c"].term == 1
    assert net.nodes["c"].role is Role.PRE_CANDIDATE
    net.cut = set()
    net.tick(5)
    assert net.leaders() == ["a"]
    assert {n.term for n in net.nodes.values()} == {1}
    assert net.nodes["c"].leader_id == "a"


def test_without_prevote_a_rejoining_node_disrupts_the_leader():
    # The contrast to the test above: what pre-vote and the lease protect against.
    net = Net("abc", config=RaftConfig(pre_vote=False, check_quorum=False))
    net.elect("a")
    net.cut = {"c"}
    net.tick(100)
    assert net.nodes["c"].term > 3
    net.cut = set()
    net.tick(60)
    assert net.nodes["a"].term >= net.nodes["c"].term > 3      # everyone was pushed to c's term


def test_prevote_is_granted_without_changing_the_voters_term():
    a = node("a", term=1)
    a.step(vote_request("b", "a", 2, pre_vote=True))
    response = only(a.ready().messages, VoteResponse)[0]
    assert response.granted and response.pre_vote and response.term == 2
    assert (a.term, a.voted_for) == (1, None)


def test_prevote_refused_by_a_newer_term_makes_the_pre_candidate_follow_that_term():
    a = node("a", term=1)
    a.campaign()
    assert (a.role, a.term) == (Role.PRE_CANDIDATE, 1)
    a.step(VoteResponse(src="b", dst="a", term=7, pre_vote=True, granted=False))
    assert (a.role, a.term) == (Role.FOLLOWER, 7)


def test_check_quorum_leader_steps_down():
    net = Net("abc")
    a = net.elect("a")
    net.cut = {"a"}
    # Checked once per election timeout, over the ticks since the last check: a leader cut
    # off steps down after one full timeout without a majority, so within two.
    for elapsed in range(1, 21):
        net.tick(1)
        if a.role is not Role.LEADER:
            break
    assert 10 <= elapsed <= 20
    assert a.role is Role.FOLLOWER and a.term == 1 and a.leader_id is None
    net.cut = set()
    with pytest.raises(NotLeader):
        a.propose(b"x")


def test_follower_in_lease_ignores_vote_requests_unless_transfer():
    net = Net("abc")
    net.elect("a")
    b = net.nodes["b"]
    b.step(vote_request("c", "b", 5, last_index=9, last_term=9))
    assert b.term == 1 and not b.has_ready()     # no answer, no new term: it trusts its leader
    b.step(vote_request("c", "b", 5, last_index=9, last_term=9, transfer=True))
    assert b.term == 5 and only(b.ready().messages, VoteResponse)[0].granted


# -- log replication (§5.3) ---------------------------------------------------------------------

def test_follower_rejects_append_whose_previous_entry_does_not_match():
    b = node("b", entries=log_of(1, 1, 2), term=2)
    b.step(append("a", "b", 3, prev_index=3, prev_term=3, entries=log_of(3, start=4)))
    response = only(b.ready().messages, AppendResponse)[0]
    assert not response.success
    assert (response.conflict_term, response.conflict_index, response.rejected_index) == (2, 3, 3)
    assert b.last_index == 3


def test_follower_deletes_conflicting_entries_and_appends_new_ones():
    b = node("b", entries=log_of(1, 1, 2, 2), term=2)
    b.step(append("a", "b", 3, prev_index=2, prev_term=1, entries=log_of(3, start=3), commit=3))
    ready = b.ready()
    assert ready.entries == log_of(3, start=3)                  # storage cuts its log at index 3
    assert [e.term for e in b.log.slice(1, b.last_index + 1)] == [1, 1, 3]
    assert b.commit_index == 3 and only(ready.messages, AppendResponse)[0].match_index == 3


def test_late_duplicate_append_does_not_truncate_the_log():
    b = node("b", entries=log_of(1, 1, 1, 1), term=1)
    b.step(append("a", "b", 1, prev_index=1, prev_term=1, entries=log_of(1, start=2)))
    assert b.last_index == 4


def test_heartbeat_commits_no_further_than_the_entries_it_verified():
    # Figure 2: commitIndex = min(leaderCommit, index of last new entry).
    b = node("b", entries=log_of(1, 1, 1), term=1)
    b.step(append("a", "b", 1, prev_index=1, prev_term=1, commit=3))
    assert b.commit_index == 1


def test_leader_heartbeats_carry_the_followers_match_as_prev_log_index():
    net = Net("abc")
    a = net.elect("a")
    net.cut = {"c"}
    a.propose(b"x")
    net.drain()
    mark = len(net.sent)
    net.tick(1)
    to_b, to_c = (net.sent_since(mark, AppendEntries, src="a", dst=d)[0] for d in "bc")
    assert (to_b.prev_log_index, to_c.prev_log_index, to_b.leader_commit) == (2, 1, 2)
    assert net.nodes["c"].commit_index == 1


@pytest.mark.parametrize("leader_has_the_term", [False, True])
def test_fast_backtracking_skips_a_conflicting_term_in_one_round_trip(leader_has_the_term):
    # b holds 50 entries of term 2 that no leader committed; the leader's log differs from
    # index 2 (or 3) on. One rejection must be enough to find where they agree.
    leader_log = log_of(1, *([2] if leader_has_the_term else []), *[3] * 9)
    stale_log = log_of(1, *[2] * 50)
    net = Net("abc", persisted={
        "a": PersistedState(HardState(3), None, leader_log),
        "b": PersistedState(HardState(3), None, stale_log),
        "c": PersistedState(HardState(3), None, leader_log),
    })
    a = net.elect("a")
    rejections = [m for m in net.sent if isinstance(m, AppendResponse) and m.src == "b" and not m.success]
    assert len(rejections) == 1
    b = net.nodes["b"]
    assert b.last_index == a.last_index and b.log.slice(1, b.last_index + 1) == a.log.slice(1, a.last_index + 1)


def test_leader_commits_only_current_term_entries_by_counting():
    # Figure 8: the leader of term 4 holds index 2 from term 2; even on a majority, that
    # entry is not committed by counting -- only once an entry of term 4 is.
    s1 = RaftNode("1", membership=members("12345"), rng=random.Random(0), config=NO_PREVOTE,
                  persisted=PersistedState(HardState(3), None, log_of(1, 2)))
    s1.campaign()
    for voter in "23":
        s1.step(VoteResponse(src=voter, dst="1", term=4, granted=True))
    assert s1.role is Role.LEADER and s1.log.term_at(3) == 4      # its NOOP
    s1.ready()
    for follower in "23":
        s1.step(AppendResponse(src=follower, dst="1", term=4, success=True, match_index=2))
    assert s1.commit_index == 0                     # index 2 is on 3 of 5, but from term 2
    for follower in "23":
        s1.step(AppendResponse(src=follower, dst="1", term=4, success=True, match_index=3))
    assert s1.commit_index == 3                     # the NOOP commits, and index 2 with it


def test_figure8_an_older_term_entry_on_a_majority_can_still_be_overwritten():
    # Why the rule above: S5 (last term 3) can win term 5 and replace index 2 everywhere.
    old = log_of(1, 2)
    net = Net("12345", persisted={
        "1": PersistedState(HardState(4, "1"), None, old),
        "2": PersistedState(HardState(4, "1"), None, old),
        "3": PersistedState(HardState(4, "1"), None, old),
        "4": PersistedState(HardState(4, "1"), None, log_of(1)),
        "5": PersistedState(HardState(4), None, log_of(1, 3)),
    })
    net.cut = {"1"}
    net.elect("5")
    assert [net.nodes[n].log.term_at(2) for n in "2345"] == [3, 3, 3, 3]


def test_proposals_between_ready_calls_share_one_append():
    net = Net("abc")
    a = net.elect("a")
    for i in range(10):
        a.propose(b"x%d" % i)
    appends = only(a.ready().messages, AppendEntries)
    assert sorted(m.dst for m in appends) == ["b", "c"]
    assert all(len(m.entries) == 10 for m in appends)


def test_replicate_state_pipelines_up_to_max_inflight_appends():
    net = Net("abc", config=RaftConfig(max_entries_per_message=2, max_inflight_messages=3))
    a = net.elect("a")
    for i in range(10):
        a.propose(b"x%d" % i)
    messages = net.handle("a")
    to_b = [m for m in messages if isinstance(m, AppendEntries) and m.dst == "b"]
    assert [len(m.entries) for m in to_b] == [2, 2, 2]            # 3 in flight, 4 entries wait
    assert a.progress("b") == (1, 8)                               # next advanced optimistically
    for m in messages:
        net.nodes[m.dst].step(m)
    net.drain()                                                    # acks open the window again
    assert {n.commit_index for n in net.nodes.values()} == {11}


def test_rejection_drops_follower_back_to_probing_one_append_at_a_time():
    net = Net("abc", config=RaftConfig(max_entries_per_message=1))
    a = net.elect("a")
    a.ready()
    for i in range(3):
        a.propose(b"x%d" % i)
    a.ready()                                    # 3 pipelined appends to b, say all lost
    a.step(AppendResponse(src="b", dst="a", term=1, success=False, rejected_index=4,
                          conflict_index=2, conflict_term=None))
    assert a.progress("b") == (1, 2)
    for i in range(3):
        a.propose(b"y%d" % i)
    to_b = [m for m in a.ready().messages if isinstance(m, AppendEntries) and m.dst == "b"]
    assert [(m.prev_log_index, len(m.entries)) for m in to_b] == [(1, 1)]


def test_lost_appends_are_resent_after_a_heartbeat():
    net = Net("abc")
    a = net.elect("a")
    net.cut = {"c"}
    a.propose(b"x")
    net.drain()                                   # c missed it; nothing new will be proposed
    net.cut = set()
    net.tick(1)
    assert net.state["c"] == [b"x"] and net.nodes["c"].commit_index == 2


def test_one_agreement_costs_four_requests_in_a_three_node_cluster():
    # Two appends, then two heartbeats telling the followers it committed (6.824 counts RPCs).
    net = Net("abc")
    a = net.elect("a")
    mark = len(net.sent)
    a.propose(b"x")
    net.drain()
    assert len([m for m in net.sent[mark:] if is_request(m)]) == 4
    assert all(net.state[n] == [b"x"] for n in "abc")


# -- terms -----------------------------------------------------------------------------------------

def test_stale_request_is_refused_with_the_current_term():
    b = node("b", term=5)
    b.step(append("a", "b", 3, prev_index=0, prev_term=0))
    b.step(vote_request("c", "b", 4, last_index=9, last_term=4))
    answers = b.ready().messages
    assert [(type(m), m.term) for m in answers] == [(AppendResponse, 5), (VoteResponse, 5)]
    assert not answers[0].success and not answers[1].granted


def test_stale_leader_learns_the_newer_term_and_steps_down():
    net = Net("abc", config=RaftConfig(check_quorum=False))
    a = net.elect("a")
    net.cut = {"a"}
    net.tick(40)
    (new,) = net.leaders()
    assert a.role is Role.LEADER and net.nodes[new].term > 1
    net.cut = set()
    net.tick(1)
    assert a.role is Role.FOLLOWER and a.term == net.nodes[new].term and a.leader_id == new


def test_restart_from_persisted_state():
    net = Net("abc")
    a = net.elect("a")
    for i in range(3):
        a.propose(b"x%d" % i)
    net.drain()
    before = net.nodes["b"]
    b = net.restart("b")
    assert (b.term, b.voted_for, b.commit_index, b.last_index) == (before.term, "a", 4, 4)
    assert b.log.slice(1, 5) == before.log.slice(1, 5)
    net.drain()
    assert net.state["b"] == [b"x0", b"x1", b"x2"]              # re-applied from the log
    a.propose(b"y")
    net.drain()
    assert net.state["b"][-1] == b"y"


def test_node_without_membership_or_snapshot_is_refused():
    with pytest.raises(ValueError):
        RaftNode("a", rng=random.Random(0))


# -- ReadIndex (§6.4) ---------------------------------------------------------------------------

def test_read_index_waits_for_quorum_heartbeat():
    net = Net("abc")
    a = net.elect("a")
    a.read_index("r1")
    a.read_index("r2")
    ready = net.handle("a")
    assert ready and not net.reads["a"]
    rounds = [m for m in ready if isinstance(m, AppendEntries) and m.read_context is not None]
    assert sorted(m.dst for m in rounds) == ["b", "c"]            # one round for both reads
    b = net.nodes["b"]
    b.step(next(m for m in rounds if m.dst == "b"))
    for answer in net.handle("b"):
        a.step(answer)
    net.handle("a")
    assert net.reads["a"] == [ReadState("r1", 1), ReadState("r2", 1)]


def test_read_index_waits_until_the_leader_commits_an_entry_of_its_term():
    a = node("a", config=NO_PREVOTE)
    a.campaign()
    a.step(VoteResponse(src="b", dst="a", term=1, granted=True))
    a.read_index("r")
    ready = a.ready()
    assert not ready.read_states and all(m.read_context is None for m in only(ready.messages, AppendEntries))
    a.step(AppendResponse(src="b", dst="a", term=1, success=True, match_index=1))
    (round_,) = {m.read_context for m in only(a.ready().messages, AppendEntries) if m.read_context}
    a.step(AppendResponse(src="c", dst="a", term=1, success=True, match_index=1, read_context=round_))
    assert a.ready().read_states == (ReadState("r", 1),)


def test_read_index_in_single_voter_cluster_is_immediate():
    net = Net("a")
    a = net.elect("a")
    a.propose(b"x")
    a.read_index("r")
    net.drain()
    assert net.reads["a"] == [ReadState("r", 2)]


def test_read_index_on_follower_raises_not_leader_with_a_hint():
    net = Net("abc")
    net.elect("a")
    with pytest.raises(NotLeader) as raised:
        net.nodes["b"].read_index("r")
    assert raised.value.leader_id == "a"


# -- leadership transfer (§3.10) -------------------------------------------------------------------

def test_transfer_leadership():
    net = Net("abc")
    a = net.elect("a")
    net.cut = {"c"}
    for i in range(5):
        a.propose(b"x%d" % i)
    net.drain()
    net.cut = set()
    mark = len(net.sent)
    a.transfer_leadership("c")                  # c lacks 5 entries: it is caught up first
    with pytest.raises(NotLeader) as raised:
        a.propose(b"refused")
    assert raised.value.leader_id == "c"
    net.tick(1)
    c = net.nodes["c"]
    assert net.leaders() == ["c"] and c.term == 2 and a.leader_id == "c"
    (timeout_now,) = net.sent_since(mark, TimeoutNow)
    assert timeout_now.dst == "c"
    requests = net.sent_since(mark, VoteRequest, src="c")
    assert requests and all(m.transfer and not m.pre_vote for m in requests)
    assert net.state["c"] == [b"x%d" % i for i in range(5)]


def test_transfer_leadership_is_aborted_after_an_election_timeout():
    net = Net("abc")
    a = net.elect("a")
    net.cut = {"c"}
    a.transfer_leadership("c")
    with pytest.raises(NotLeader):
        a.propose(b"x")
    net.tick(10)
    assert a.role is Role.LEADER and a.transferee is None
    a.propose(b"x")


# -- membership changes (chapter 4) -----------------------------------------------------------------

def add_learner(net: Net, leader: RaftNode, name: str) -> RaftNode:
    new = net.start(name)                 # a new server starts with the shard's bootstrap membership
    leader.propose_membership(ConfigChange("add_learner", name))
    net.drain()
    return new


def test_learner_does_not_vote_and_is_not_counted():
    net = Net("abc")
    a = net.elect("a")
    d = add_learner(net, a, "d")
    a.propose(b"x")
    net.drain()
    assert d.is_learner and d.membership == members("abc", "d") and net.state["d"] == [b"x"]
    net.cut = {"b", "c"}                  # a and learner d alone: no majority of voters
    index = a.propose(b"y")
    net.tick(3)
    assert d.last_index >= index and a.commit_index < index
    net.cut = {"a"}                       # b and c elect a leader without asking d; d never runs
    mark = len(net.sent)
    net.tick(40)
    assert net.leaders() in (["b"], ["c"])
    votes = net.sent_since(mark, VoteRequest)
    assert votes and all("d" not in (m.src, m.dst) for m in votes)


def test_learner_is_promoted_and_then_counts_in_the_majority():
    net = Net("ab")
    a = net.elect("a")
    d = add_learner(net, a, "d")
    net.cut = {"b"}
    index = a.propose(b"y")
    net.drain()
    assert a.commit_index < index              # d's copy does not count: a alone of {a, b}
    net.cut = set()
    net.tick(1)
    a.propose_membership(ConfigChange("promote", "d"))
    net.drain()
    assert d.membership == members("abd") and not d.is_learner
    net.cut = {"b"}
    index = a.propose(b"z")
    net.drain()
    assert a.commit_index >= index and net.state["d"] == [b"y", b"z"]   # a and d: 2 of {a, b, d}


def test_config_takes_effect_when_appended_and_reverts_when_truncated():
    b = node("b", entries=log_of(1), term=1)
    change = Entry(2, 1, EntryKind.CONFIG, ConfigChange("add_learner", "d").encode())
    b.step(append("a", "b", 1, prev_index=1, prev_term=1, entries=[change]))
    assert b.membership == members("abc", "d")          # in force before it commits
    b.step(append("c", "b", 2, prev_index=1, prev_term=1, entries=[Entry(2, 2, EntryKind.NOOP)]))
    assert b.membership == members("abc")               # gone with the truncated entry


def test_membership_change_rules():
    a = node("a", config=NO_PREVOTE)
    a.campaign()
    a.step(VoteResponse(src="b", dst="a", term=1, granted=True))
    with pytest.raises(ValueError, match="committed an entry of its term"):
        a.propose_membership(ConfigChange("add_learner", "d"))
    a.step(AppendResponse(src="b", dst="a", term=1, success=True, match_index=1))
    with pytest.raises(ValueError, match="not a learner"):
        a.propose_membership(ConfigChange("promote", "b"))
    with pytest.raises(ValueError, match="already a member"):
        a.propose_membership(ConfigChange("add_learner", "c"))
    a.propose_membership(ConfigChange("add_learner", "d"))
    with pytest.raises(ValueError, match="previous membership change"):
        a.propose_membership(ConfigChange("remove", "c"))
    with pytest.raises(NotLeader):
        node("b").propose_membership(ConfigChange("add_learner", "e"))


def test_remove_leader_steps_down_after_commit():
    net = Net("abc")
    a = net.elect("a")
    net.cut = {"c"}
    index = a.propose_membership(ConfigChange("remove", "a"))
    net.tick(3)
    # a and b are a majority of {a, b, c}, but the new configuration {b, c} counts without a.
    assert a.role is Role.LEADER and a.commit_index < index
    net.cut = set()
    net.tick(1)                                    # the heartbeat finds c behind; it catches up
    assert a.role is Role.FOLLOWER and a.membership == members("bc")
    mark = len(net.sent)
    net.tick(60)
    (leader,) = net.leaders()
    assert leader in "bc" and not net.sent_since(mark, src="a")     # a never campaigns again


def test_removed_follower_does_not_disrupt_the_cluster():
    net = Net("abc")
    a = net.elect("a")
    net.cut = {"c"}                                # c never learns it was removed
    a.propose_membership(ConfigChange("remove", "c"))
    net.drain()
    assert a.membership == members("ab")
    net.tick(30)
    net.cut = set()
    net.tick(60)                                   # c keeps timing out; its pre-votes fail
    assert net.leaders() == ["a"] and a.term == 1 and net.nodes["b"].term == 1


# -- snapshots (§7) ---------------------------------------------------------------------------------

def test_install_snapshot_to_lagging_follower():
    net = Net("abc")
    a = net.elect("a")
    net.cut = {"c"}
    for i in range(10):
        a.propose(b"x%d" % i)
    net.drain()
    a.compact(a.applied_index, encode_state(net.state["a"]))
    net.drain()
    assert a.log.first_index == 12 and net.disks["a"].snapshot.meta.index == 11
    net.cut = set()
    net.tick(1)
    c = net.nodes["c"]
    assert [m.dst for m in net.sent if isinstance(m, InstallSnapshot)] == ["c"]
    assert any(r.restore_snapshot for r in net.readies["c"])
    assert net.state["c"] == net.state["a"] and c.commit_index == c.applied_index == 11
    assert c.membership == members("abc")
    a.propose(b"after")
    net.drain()
    assert net.state["c"][-1] == b"after"
    c = net.restart("c")                            # and it comes back from its own snapshot
    net.drain()
    assert net.state["c"] == net.state["a"]


def test_new_leader_with_a_compacted_log_sends_no_snapshot_to_followers_that_hold_it():
    """Reproduction: every node compacts its log up to its last index (an idle shard);
    then b is elected. b started each follower at next = last_index (inside its snapshot)
    instead of the paper's last_index + 1, so it sent InstallSnapshot to a and c -- a full
    state transfer per election -- although both already held that very snapshot."""
    net = Net("abc")
    a = net.elect("a")
    for i in range(5):
        a.propose(b"x%d" % i)
    net.tick(2)                                     # followers learn the commit index
    for name, n in net.nodes.items():
        assert n.applied_index == n.last_index == a.last_index
        n.compact(n.applied_index, encode_state(net.state[name]))
    net.drain()
    mark = len(net.sent)
    a.transfer_leadership("b")
    net.drain()
    b = net.nodes["b"]
    assert b.role is Role.LEADER
    b.propose(b"after")
    net.tick(3)
    assert net.sent_since(mark, InstallSnapshot) == []
    assert net.state["a"][-1] == net.state["c"][-1] == b"after"


def test_peer_added_later_still_starts_at_the_leaders_last_index():
    """A learner added to an idle shard must be probed at once (next = last index), the
    case the first-probe rule exists for; only a new leader's existing peers start one past."""
    net = Net("abc")
    a = net.elect("a")
    net.start("d")
    a.propose_membership(ConfigChange("add_learner", "d"))
    net.tick(2)
    assert net.nodes["d"].last_index == a.last_index


def test_lost_snapshot_is_resent_after_an_election_timeout():
    net = Net("abc")
    a = net.elect("a")
    net.cut = {"c"}
    for i in range(3):
        a.propose(b"x%d" % i)
    net.drain()
    a.compact(a.applied_index, encode_state(net.state["a"]))
    net.cut = set()
    net.drop = lambda m: isinstance(m, InstallSnapshot)
    net.tick(1)
    net.drop = lambda m: False
    net.tick(8)
    assert len([m for m in net.sent if isinstance(m, InstallSnapshot)]) == 1 and net.state["c"] == []
    net.tick(3)
    assert len([m for m in net.sent if isinstance(m, InstallSnapshot)]) == 2
    assert net.state["c"] == net.state["a"]


def test_follower_keeps_the_log_suffix_that_follows_the_snapshot():
    b = node("b", entries=log_of(1, 1, 1, 1, 1), term=1, commit=2)
    snapshot = Snapshot(SnapshotMeta(3, 1, members("abc")), b"state@3")
    b.step(InstallSnapshot(src="a", dst="b", term=1, snapshot=snapshot))
    ready = b.ready()
    assert ready.snapshot == snapshot and ready.restore_snapshot
    assert (b.log.first_index, b.last_index, b.commit_index) == (4, 5, 3)
    assert only(ready.messages, AppendResponse)[0].match_index == 3


def test_follower_drops_its_log_when_it_lacks_the_snapshots_last_entry():
    b = node("b", entries=log_of(1, 1, 1, 1, 1), term=2, commit=2)
    snapshot = Snapshot(SnapshotMeta(4, 2, members("abcd")), b"state@4")
    b.step(InstallSnapshot(src="a", dst="b", term=2, snapshot=snapshot))
    assert (b.log.first_index, b.last_index, b.commit_index) == (5, 4, 4)
    assert b.membership == members("abcd")


def test_stale_snapshot_is_answered_with_the_current_match():
    b = node("b", entries=log_of(1, 1, 1, 1, 1), term=1, commit=5)
    b.step(InstallSnapshot(src="a", dst="b", term=1, snapshot=Snapshot(SnapshotMeta(3, 1, members("abc")))))
    ready = b.ready()
    assert ready.snapshot is None and b.last_index == 5
    assert only(ready.messages, AppendResponse)[0].match_index == 5


def test_compact_beyond_applied_index_is_refused():
    net = Net("a")
    a = net.elect("a")
    a.propose(b"x")
    with pytest.raises(ValueError):
        a.compact(2, b"")                          # committed, but not yet handed out
    net.drain()
    a.compact(2, b"x")
    assert net.nodes["a"].has_ready() and a.ready().snapshot.meta.index == 2


# -- all of it at once ------------------------------------------------------------------------------

def test_safety_under_loss_duplication_reordering_crashes_and_compaction():
    # Election Safety (one leader per term) and State Machine Safety (no two servers apply
    # different commands at one index; ``Net.handle`` checks that) under a hostile network.
    rng = random.Random(2024)
    net = Net("abcde", seed=5)
    in_flight: list = []
    leader_of_term: dict[int, str] = {}
    proposed = 0
    for step in range(1500):
        for name in sorted(net.nodes):
            net.nodes[name].tick()
        for name in sorted(net.nodes):
            n = net.nodes[name]
            if n.role is Role.LEADER:
                assert leader_of_term.setdefault(n.term, name) == name
                if rng.random() < 0.5 and n.transferee is None:
                    n.propose(b"c%d" % proposed)
                    proposed += 1
            if n.has_ready():
                in_flight.extend(net.handle(name))
            if n.applied_index - n.log.first_index > 20 and rng.random() < 0.1:
                n.compact(n.applied_index, encode_state(net.state[name]))
        rng.shuffle(in_flight)
        deliver, in_flight = in_flight[:len(in_flight) // 2 + 1], in_flight[len(in_flight) // 2 + 1:]
        for m in deliver:
            if rng.random() < 0.1 or not net.deliverable(m):
                continue
            net.nodes[m.dst].step(m)
            if rng.random() < 0.05:
                net.nodes[m.dst].step(m)
        if step % 150 == 0:
            net.cut = {rng.choice("abcde")} if not net.cut else set()
        if step % 97 == 0:
            net.restart(rng.choice("abcde"))
        if step % 211 == 0:
            leader = next((n for n in net.nodes.values() if n.role is Role.LEADER), None)
            if leader is not None:
                leader.transfer_leadership(rng.choice(sorted(leader.membership.voters)))
    states = sorted(net.state.values(), key=len)
    for shorter, longer in zip(states, states[1:]):
        assert longer[:len(shorter)] == shorter
    assert len(states[-1]) > 300 and len(leader_of_term) > 3
