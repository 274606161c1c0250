"""Jepsen-style histories and the pure checkers that judge them.

    from workbench.history import History, summary
    h = History()
    h.invoke(0, "write", "k", "v1", time=0.0); h.ok(0, time=0.1)
    summary(h, final={"k": "v1"})
"""

from .checkers import (Verdict, aborted_reads, dirty_reads, final_state, key_kind,
                       linearizable, lost_writes, stale_reads, summary, unavailability)
from .model import (ADD, FAIL, FINAL_READ, INCR, INFO, INVOKE, OK, READ, WRITE, History, Op,
                    Operation, simulated_register_history)

__all__ = [
    "History", "Op", "Operation", "Verdict", "simulated_register_history",
    "lost_writes", "dirty_reads", "aborted_reads", "stale_reads", "linearizable",
    "unavailability", "summary", "final_state", "key_kind",
    "INVOKE", "OK", "FAIL", "INFO", "WRITE", "READ", "ADD", "INCR", "FINAL_READ",
]
