"""Solution of labs/01-wait-is-not-a-promise.ipynb.

Each "# cell: <id>" section replaces the answer cell with that id;
`workbench lab check labs/01-wait-is-not-a-promise.ipynb --solution THIS_FILE` runs the lab
with it, to prove that the lab can be passed.
"""

# cell: answer-schedule
# The primary and the replica that confirms its WAITs are cut off together: a minority
# of two. The other three monitors are a majority and promote one of their own, which
# never saw the adds the minority confirmed; at the heal the old primary rejoins as its
# replica and throws them away.
my_schedule = Schedule("wait-then-failover, by hand", (
    Fault(0.6, "partition", groups=(("primary", "replica"), ("rest",))),
    Fault(2.1, "heal"),
), duration=3)
