"""Solution of labs/06-break-raft.ipynb: one '# cell: <id>' section per answer cell."""

# cell: answer-lever
# A split brain: the leader cut off in a minority believes it leads; with the lever it
# answers reads from its own state while the majority elects a new leader and commits
# newer values. The reader bound to it sees stale values.
# (The other lever: "raft_bug_definite_timeout" with "flapping-primary" and
#  {"election_timeout_ms": 3000, "durability_timeout_ms": 300}: aborted reads.)
my_lever = "raft_bug_read_before_noop"
my_schedule = "split-brain"
my_settings = {}
