"""Leader election: timeouts, pre-votes, votes (paper §5.2, §5.4.1; dissertation §9.6).

Theory of operation
-------------------
A follower that hears nothing from a leader for its *election timeout* -- a number of
ticks drawn anew from ``[election_ticks, 2 * election_ticks)`` each time, so that two
servers rarely time out together -- starts an election::

    FOLLOWER --timeout--> PRE_CANDIDATE --majority of pre-votes--> CANDIDATE --majority--> LEADER
        ^                       |                                      |
        +--- a leader's message, a newer term, or a majority refusing -+

(Without pre_vote, or when handed leadership by TimeoutNow, straight to CANDIDATE.)

**Pre-vote** first (§9.6): the pre-candidate asks "would you vote for me in term T+1?"
without changing its own term. A voter says yes if the candidate's log is at least as
up-to-date as its own and -- with check_quorum -- it has not heard from a leader within
an election timeout. Nobody's term changes, so a server that was cut off and kept
timing out cannot force a healthy leader out when it returns: its pre-votes fail.

**Vote** next: the candidate increments its term, votes for itself and asks the others.
A server grants at most one vote per term (persisted in ``HardState.voted_for`` before
the answer leaves: the ``Ready`` contract) and only to a candidate whose log is at least
as up-to-date as its own (the election restriction, §5.4.1), which is what puts every
committed entry into every future leader's log.

**The leader lease** (check_quorum, §6.2 and §4.2.3): a server that heard from a leader
within the election timeout ignores requests for votes in newer terms -- no answer, no
term change -- unless the request is a leadership transfer (``transfer``).

**Membership.** Only voters of a server's own configuration campaign, so a learner never
does, and a candidate asks and counts only the voters of its configuration. A removed
server stops campaigning once the entry removing it reaches its log; but the leader stops
replicating to it the moment it appends that entry, so the removed server may never
learn of it and keep asking for pre-votes (§4.2.3's disruptive server). PreVote and the
leader lease make that harmless: nobody grants, no term moves. Shut removed servers down.

Requests are answered without consulting the configuration (§4.1): a
learner asked for its vote is one the candidate already knows to be promoted.

The methods here are mixed into ``RaftNode`` (core.py), whose state they use.
"""

from __future__ import annotations

from .messages import TimeoutNow, VoteRequest, VoteResponse
from .ready import Role
from .types import EntryKind


class Elections:
    """Election behaviour of ``RaftNode``."""

    def _promotable(self) -> bool:
        return self._id in self._log.membership.voters

    def _in_lease(self) -> bool:
        """Heard from a live leader within the election timeout (a leader: is one)."""
        return (self._config.check_quorum and self._leader_id is not None
                and self._election_elapsed < self._config.election_ticks)

    def _reset_election_timer(self) -> None:
        ticks = self._config.election_ticks
        self._election_elapsed = 0
        self._randomized_timeout = ticks + self._rng.randrange(ticks)

    def _tick_election(self) -> None:
        self._election_elapsed += 1
        if self._promotable() and self._election_elapsed >= self._randomized_timeout:
            self._hup()

    def _hup(self, transfer: bool = False) -> None:
        """Start an election: a pre-vote first, unless disabled or handed leadership."""
        if self._role is Role.LEADER or not self._promotable():
            return
        if self._config.pre_vote and not transfer:
            self._role = Role.PRE_CANDIDATE
            self._leader_id = None
            self._reset_election_timer()
            self._request_votes(pre_vote=True, transfer=False)
        else:
            self._become_candidate(transfer)

    def _become_candidate(self, transfer: bool = False) -> None:
        self._term += 1
        self._voted_for = self._id
        self._role = Role.CANDIDATE
        self._leader_id = None
        self._reset_election_timer()
        self._request_votes(pre_vote=False, transfer=transfer)

    def _request_votes(self, *, pre_vote: bool, transfer: bool) -> None:
        self._votes = {self._id: True}
        term = self._term + 1 if pre_vote else self._term
        for voter in sorted(self._log.membership.voters - {self._id}):
            self._send(VoteRequest(src=self._id, dst=voter, term=term, pre_vote=pre_vote,
                                   last_log_index=self._log.last_index,
                                   last_log_term=self._log.last_term, transfer=transfer))
        self._tally()

    def _on_vote_request(self, m: VoteRequest) -> None:
        # Figure 2: grant if we have not voted for someone else this term (etcd adds: and
        # follow no leader in it), and the candidate's log is at least as up-to-date as
        # ours. A pre-vote for a future term is judged on the log alone (and the lease,
        # already checked in ``step``).
        can_vote = (self._voted_for == m.src
                    or (self._voted_for is None and self._leader_id is None)
                    or (m.pre_vote and m.term > self._term))
        granted = can_vote and self._log.is_up_to_date(m.last_log_index, m.last_log_term)
        if granted and not m.pre_vote:
            self._voted_for = m.src
            self._election_elapsed = 0
        self._send(VoteResponse(src=self._id, dst=m.src, term=m.term if granted else self._term,
                                pre_vote=m.pre_vote, granted=granted))

    def _on_vote_response(self, m: VoteResponse) -> None:
        if m.pre_vote:
            # Granted pre-votes carry the term we would run in; refusals carry our own.
            expected_term = self._term + 1 if m.granted else self._term
            if self._role is not Role.PRE_CANDIDATE or m.term != expected_term:
                return
        elif self._role is not Role.CANDIDATE:
            return
        # The first answer counts: a later refusal may only be the voter answering an older,
        # delayed request of ours, and must not take back a vote it granted (as etcd).
        self._votes.setdefault(m.src, m.granted)
        self._tally()

    def _tally(self) -> None:
        voters = self._log.membership.voters
        granted = sum(1 for voter, yes in self._votes.items() if yes and voter in voters)
        refused = sum(1 for voter, yes in self._votes.items() if not yes and voter in voters)
        quorum = self._log.membership.quorum()
        if granted >= quorum:
            if self._role is Role.PRE_CANDIDATE:
                self._become_candidate()
            else:
                self._become_leader()
        elif refused > len(voters) - quorum:
            self._become_follower(self._term, None)

    def _on_timeout_now(self, m: TimeoutNow) -> None:
        if self._role is Role.FOLLOWER:
            self._hup(transfer=True)

    def _become_leader(self) -> None:
        self._role = Role.LEADER
        self._leader_id = self._id
        self._votes = {}
        self._start_leadership()
        # §5.4.2 / Figure 8: entries of earlier terms commit only once an entry of the
        # leader's own term does; the NOOP makes that happen without waiting for a client.
        self._append_new(EntryKind.NOOP, b"")

    def _send_timeout_now(self, target: str) -> None:
        self._send(TimeoutNow(src=self._id, dst=target, term=self._term))

