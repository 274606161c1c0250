"""The keyspace and the command table: pure and deterministic, no I/O, no clocks."""

# importing the command modules registers their handlers
from . import cmd_databases, cmd_hashes, cmd_keys, cmd_lists, cmd_scans, cmd_sets, cmd_strings  # noqa: F401
from .keyspace import Context, Database, Keyspace, Outcome, unknown_command, wrong_arity
from .table import COMMANDS, CommandSpec, command, lookup, server_command

__all__ = ["Context", "Database", "Keyspace", "Outcome", "unknown_command", "wrong_arity",
           "COMMANDS", "CommandSpec", "command", "lookup", "server_command"]
