"""Log replication: AppendEntries and InstallSnapshot, leader side and follower side
(paper §5.3, §5.4, §7; Figure 2).

Theory of operation
-------------------
**Leader.** A proposal is appended to the leader's log and nothing is sent at once:
appends are generated when the caller asks for ``ready()``, so all proposals made since
the previous Ready travel in one AppendEntries per follower (up to
``max_entries_per_message`` entries each). How much may be in flight to each follower
is ``Progress``'s business (progress.py): one probe at a time while the leader is still
finding where the logs agree, up to ``max_inflight_messages`` pipelined appends once it
has. A follower whose next entry was compacted away gets the snapshot instead.

**Commitment** (§5.3, §5.4.2). An entry is committed once a majority of voters store it
*and* it belongs to the leader's current term; entries of earlier terms then commit with
it. Counting replicas of an older-term entry is not enough (Figure 8: it may still be
overwritten), which is why every new leader appends a NOOP. The leader counts its own
log as stored: the Ready contract makes it durable before any message or reply that
depends on it leaves the node. A leader that is not a voter of its own configuration
(it is removing itself) does not count itself.

**Heartbeats** go to every follower each ``heartbeat_ticks``. They are AppendEntries with
no entries whose ``prev_log_index`` is the follower's match index, so the consistency
check passes, and Figure 2's rule -- commit up to min(leader_commit, index of last new
entry) -- lets the follower commit only what it is known to hold (etcd clamps the same
way). When the commit index moves past what a follower was told, it also gets such a
heartbeat with the next Ready.

**Follower** (Figure 2, AppendEntries receiver). Entries up to its own commit index are
skipped: any current leader has them too (Leader Completeness). Then the consistency
check at ``prev_log_index``; on a mismatch the reply carries the term found there and
the first index of that term (or the log's end), and the leader moves ``next`` past the
whole conflicting term in one step (§5.3's optimization): ~50 conflicting entries cost a
couple of round trips, not 50. On a match, conflicting entries are replaced, and the
commit index follows the leader's.

**InstallSnapshot** (Figure 5.3). A snapshot at or below the follower's commit index is
stale and answered with the current match. Otherwise the follower keeps the entries
after the snapshot if its log holds the snapshot's last entry, drops its log if not,
and jumps its commit and applied index to the snapshot; the Ready tells the application
to restore from it.

The methods here are mixed into ``RaftNode`` (core.py), whose state they use.
"""

from __future__ import annotations

from .messages import AppendEntries, AppendResponse, InstallSnapshot
from .progress import Progress, ProgressState, quorum_value
from .read_index import ReadIndexQueue
from .ready import Role
from .types import Entry, EntryKind


class Replication:
    """Replication behaviour of ``RaftNode``."""

    # -- leader: bookkeeping -----------------------------------------------------------

    def _start_leadership(self) -> None:
        self._progress = {}
        self._reads = ReadIndexQueue()
        self._transferee = None
        self._heartbeat_elapsed = 0
        self._election_elapsed = 0
        self._sync_progress(next_index=self._log.last_index + 1)

    def _sync_progress(self, next_index: int | None = None) -> None:
        """One Progress per other member of the configuration in force.

        A new leader starts every follower one past its last entry (the paper's nextIndex,
        etcd's becomeLeader): the NOOP it appends next is the probe, so a follower that
        already holds a snapshot covering the leader's whole log is not sent it again.
        A peer added later starts *at* the last index instead: a probe carrying the last
        entry is due at once, so a learner added to an idle shard starts catching up.
        """
        members = self._log.membership.members - {self._id}
        for peer in [peer for peer in self._progress if peer not in members]:
            del self._progress[peer]
        start = next_index if next_index is not None else max(1, self._log.last_index)
        for peer in sorted(members - self._progress.keys()):
            self._progress[peer] = Progress(start, self._config.max_inflight_messages)
        if self._transferee is not None and self._transferee not in self._log.membership.voters:
            self._transferee = None

    def _append_new(self, kind: EntryKind, data: bytes) -> int:
        entry = Entry(self._log.last_index + 1, self._term, kind, data)
        before = self._log.membership
        self._log.append(entry)
        if self._log.membership != before:
            self._on_membership_change()
        self._maybe_commit()
        return entry.index

    def _maybe_commit(self) -> None:
        matches = {peer: progress.match for peer, progress in self._progress.items()}
        matches[self._id] = self._log.last_index
        index = quorum_value(matches, self._log.membership.voters)
        if index <= self._commit or self._log.term_at(index) != self._term:
            return
        self._commit = index
        self._reads.term_committed(self._commit)
        if self._id not in self._log.membership.voters and self._log.last_config_index <= self._commit:
            self._become_follower(self._term, None)    # the entry removing us is committed

    def _tick_leader(self) -> None:
        self._heartbeat_elapsed += 1
        self._election_elapsed += 1
        if self._election_elapsed >= self._config.election_ticks:
            self._election_elapsed = 0
            if self._config.check_quorum and not self._quorum_active():
                self._become_follower(self._term, None)
                return
            self._transferee = None      # a transfer not done within an election timeout is aborted
        for progress in self._progress.values():
            if progress.state is ProgressState.SNAPSHOT:
                progress.snapshot_ticks += 1
                if progress.snapshot_ticks >= self._config.election_ticks:
                    progress.become_probe()     # the snapshot was probably lost: start over
        if self._heartbeat_elapsed >= self._config.heartbeat_ticks:
            self._heartbeat_elapsed = 0
            round_ = self._reads.pending_round()
            for peer, progress in self._progress.items():
                self._send_heartbeat(peer, round_ if peer in self._log.membership.voters else None)
                progress.heartbeat_sent()

    def _quorum_active(self) -> bool:
        """CheckQuorum (§6.2): did a majority of voters answer us since the previous check,
        one election timeout ago? So a leader cut off from its majority steps down after
        one to two election timeouts."""
        active = {self._id} | {peer for peer, progress in self._progress.items() if progress.recent_active}
        for progress in self._progress.values():
            progress.recent_active = False
        return len(active & self._log.membership.voters) >= self._log.membership.quorum()

    # -- leader: sending ---------------------------------------------------------------

    def _flush(self) -> None:
        """Generate the messages proposals and reads have been waiting for (at ``ready()``)."""
        if self._role is not Role.LEADER:
            return
        round_ = self._reads.start_round()
        if round_ is not None:
            for peer in sorted(self._log.membership.voters - {self._id}):
                self._send_heartbeat(peer, round_)
            self._release_reads()
        for peer, progress in self._progress.items():
            while self._append_due(progress):
                self._send_append(peer, progress)
            if self._commit_notice_due(progress):
                self._send_heartbeat(peer)

    def _has_lazy_messages(self) -> bool:
        return self._role is Role.LEADER and (
            self._reads.has_unsent()
            or any(self._append_due(p) or self._commit_notice_due(p) for p in self._progress.values()))

    def _append_due(self, progress: Progress) -> bool:
        return not progress.is_paused() and (progress.next <= self._log.last_index or progress.resync)

    def _commit_notice_due(self, progress: Progress) -> bool:
        # A follower whose match lies inside our snapshot cannot be told a commit index
        # (there is no term to check at its match); it is getting the snapshot instead.
        return (min(self._commit, progress.match) > progress.commit_sent
                and self._log.term_at(progress.match) is not None)

    def _send_append(self, peer: str, progress: Progress) -> None:
        if progress.next < self._log.first_index:
            snapshot = self._log.snapshot
            self._send(InstallSnapshot(src=self._id, dst=peer, term=self._term, snapshot=snapshot))
            progress.become_snapshot(snapshot.meta.index)
            return
        prev = progress.next - 1
        last = min(self._log.last_index, prev + self._config.max_entries_per_message)
        entries = self._log.slice(progress.next, last + 1)
        self._send(AppendEntries(src=self._id, dst=peer, term=self._term, prev_log_index=prev,
                                 prev_log_term=self._log.term_at(prev), entries=entries,
                                 leader_commit=self._commit))
        progress.sent_append(last)
        progress.commit_sent = max(progress.commit_sent, min(self._commit, last))

    def _send_heartbeat(self, peer: str, read_context: int | None = None) -> None:
        progress = self._progress[peer]
        prev, prev_term = progress.match, self._log.term_at(progress.match)
        if prev_term is None:
            # Its match was compacted away (it is being sent a snapshot). Index 0 matches
            # everywhere, and commits nothing.
            prev, prev_term = 0, 0
        self._send(AppendEntries(src=self._id, dst=peer, term=self._term, prev_log_index=prev,
                                 prev_log_term=prev_term, leader_commit=self._commit,
                                 read_context=read_context))
        progress.commit_sent = max(progress.commit_sent, min(self._commit, prev))

    # -- leader: answers -----------------------------------------------------------------

    def _on_append_response(self, m: AppendResponse) -> None:
        progress = self._progress.get(m.src)
        if self._role is not Role.LEADER or progress is None:
            return
        progress.recent_active = True
        if m.read_context is not None and m.src in self._log.membership.voters:
            self._reads.acknowledge(m.src, m.read_context)
            self._release_reads()
        if not m.success:
            progress.rejected(m.rejected_index, self._next_after_conflict(m))
            return
        if progress.acknowledged(m.match_index, self._log.first_index):
            self._maybe_commit()
            if self._role is not Role.LEADER:
                return
        else:
            progress.heard_without_progress(self._log.last_index)
        if m.src == self._transferee and progress.match == self._log.last_index:
            self._send_timeout_now(m.src)

    def _next_after_conflict(self, m: AppendResponse) -> int:
        """Where to probe next: just past our last entry of the follower's conflicting
        term if we have that term, else the first index the follower holds of it."""
        if m.conflict_term is not None:
            last = self._log.last_index_of_term(m.conflict_term)
            if last is not None:
                return last + 1
        return m.conflict_index

    def _release_reads(self) -> None:
        acks = dict(self._reads.acks)
        acks[self._id] = self._reads.round
        confirmed = quorum_value(acks, self._log.membership.voters)
        self._read_states.extend(self._reads.confirm(confirmed))

    # -- follower ------------------------------------------------------------------------

    def _follow(self, leader: str) -> None:
        if self._role is not Role.FOLLOWER:
            self._become_follower(self._term, leader)
        self._leader_id = leader
        self._election_elapsed = 0

    def _on_append_entries(self, m: AppendEntries) -> None:
        if self._role is Role.LEADER:
            return                  # two leaders in one term cannot happen; ignore the impossible
        self._follow(m.src)
        prev, prev_term, entries = m.prev_log_index, m.prev_log_term, m.entries
        if prev < self._commit:
            entries = tuple(entry for entry in entries if entry.index > self._commit)
            prev, prev_term = self._commit, self._log.term_at(self._commit)
        if self._log.term_at(prev) != prev_term:
            conflict_index, conflict_term = self._log.conflict_hint(prev)
            self._send(AppendResponse(src=self._id, dst=m.src, term=self._term, success=False,
                                      conflict_index=conflict_index, conflict_term=conflict_term,
                                      read_context=m.read_context, rejected_index=m.prev_log_index))
            return
        before = self._log.membership
        self._log.merge(entries)
        if self._log.membership != before:
            self._on_membership_change()
        last_new = prev + len(entries)
        if m.leader_commit > self._commit:
            self._commit = max(self._commit, min(m.leader_commit, last_new))
        self._send(AppendResponse(src=self._id, dst=m.src, term=self._term, success=True,
                                  match_index=last_new, read_context=m.read_context))

    def _on_install_snapshot(self, m: InstallSnapshot) -> None:
        if self._role is Role.LEADER:
            return
        self._follow(m.src)
        meta = m.snapshot.meta
        if meta.index > self._commit:
            before = self._log.membership
            self._log.install(m.snapshot)
            self._commit = self._applied = meta.index
            self._pending_snapshot, self._restore_snapshot = m.snapshot, True
            if self._log.membership != before:
                self._on_membership_change()
        self._send(AppendResponse(src=self._id, dst=m.src, term=self._term, success=True,
                                  match_index=self._commit))
