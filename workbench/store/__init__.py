"""The keyspace and the command table: pure and deterministic, no I/O, no clocks."""

# importing the command modules registers their handlers
from . import (cmd_bitmaps, cmd_databases, cmd_dump, cmd_hashes, cmd_hll, cmd_keys, cmd_lcs, cmd_lists,  # noqa: F401
               cmd_geo, cmd_scans, cmd_sets, cmd_sort, cmd_strings, cmd_zsets,
               cmd_zsets_algebra, cmd_zsets_ranges,
               cmd_streams, cmd_streams_groups, cmd_streams_info, cmd_streams_readgroup)
from .keyspace import Context, Database, Keyspace, Outcome, unknown_command, wrong_arity
from .table import COMMANDS, CommandSpec, command, lookup, server_command

__all__ = ["Context", "Database", "Keyspace", "Outcome", "unknown_command", "wrong_arity",
           "COMMANDS", "CommandSpec", "command", "lookup", "server_command"]
