"""Solution of labs/03-read-your-writes.ipynb: one '# cell: <id>' section per answer cell."""

# cell: answer-experiment
def my_experiment(session):
    """Write, let another client read the new value, cut the power before the fsync.

    In async the once-a-second fsync has (almost always) not run yet when the power
    goes; three rounds make "almost" vanish. In aof the read waits for the fsync.
    """
    for round_ in range(3):
        key = f"greeting:{round_}"
        session.write(key)
        session.read(key)
        session.power_cut()
        session.restart()
