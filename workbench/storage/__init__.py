"""Storage: the bytes that must outlive the process (AOF writer, loader and checker; the
Raft log, hard state and snapshot).

This layer does file I/O but knows no asyncio and no sockets: the server decides when to
flush and fsync, and calls in. See ``durable_file`` for why ``fsynced_size`` is the number
that matters after a power loss.
"""

from .aof import (AOF_FILENAME, AofError, AofScan, AppendOnlyFile, LoadResult, LoggedCommand,
                  load, scan_aof)
from . import check_aof   # the module: ``check_aof.check(path)``, ``check_aof.main(argv)``
from .durable_file import (DurableFile, atomic_write, fsync_dir, simulate_power_loss,
                           truncate_file)
from .raft_log import (HARD_STATE_FILENAME, RAFT_LOG_FILENAME, SNAPSHOT_FILENAME,
                       RaftLogCorrupt, RaftStorage)
from .raft_records import LogScan, scan_log

__all__ = [
    "AOF_FILENAME", "AofError", "AofScan", "AppendOnlyFile", "LoadResult", "LoggedCommand",
    "load", "scan_aof", "check_aof", "DurableFile", "atomic_write", "fsync_dir",
    "simulate_power_loss", "truncate_file",
    "RaftStorage", "RaftLogCorrupt", "RAFT_LOG_FILENAME", "HARD_STATE_FILENAME",
    "SNAPSHOT_FILENAME", "LogScan", "scan_log",
]
