"""Durability: providers report durable offsets; the commit gate holds what is not yet."""

from .gate import NOT_HELD, CommitGate, HeldReplies, UncommittedKeys
from .providers import AofProvider, RaftProvider, ReplicaProvider

__all__ = ["NOT_HELD", "CommitGate", "HeldReplies", "UncommittedKeys", "AofProvider",
           "RaftProvider", "ReplicaProvider"]
