"""The asyncio server that wires a node together: connections, dispatch, replication."""

from . import (commands_admin, commands_conn, commands_raft, commands_replication,  # noqa: F401
               reply_blocking)
from .config import SCHEMA, Config, ConfigError
from .core import NodeServer

__all__ = ["NodeServer", "Config", "ConfigError", "SCHEMA"]
