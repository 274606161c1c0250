"""The asyncio server that wires a node together: connections, dispatch, replication."""

from . import commands_admin, commands_conn, commands_replication, reply_blocking  # noqa: F401
from .config import SCHEMA, Config, ConfigError
from .core import NodeServer

__all__ = ["NodeServer", "Config", "ConfigError", "SCHEMA"]
