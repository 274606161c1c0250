"""The asyncio server that wires a node together: connections, dispatch, replication."""

from . import (blocking, blocking_streams, commands_admin, commands_client, commands_command,  # noqa: F401
               commands_conn, commands_introspection,
               commands_observe, commands_raft, commands_replication, reply_blocking, scripting,
               functions)
from .config import SCHEMA, Config, ConfigError
from .core import NodeServer

__all__ = ["NodeServer", "Config", "ConfigError", "SCHEMA"]
