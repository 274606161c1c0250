"""The raft mode's shell: the Raft core wired to sockets, disk and the commit gate."""
