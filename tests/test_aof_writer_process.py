"""The write-behind AOF writer process, driven directly: frames in, replies out, real files."""

import errno
import os
import time

import pytest

from workbench.storage.aof import AppendOnlyFile
from workbench.storage.aof_writer_process import AofWriterProcess


def replies_until(writer, predicate, timeout=10.0):
    """Collect replies until ``predicate(all_replies)`` holds (bounded)."""
    got, deadline = [], time.monotonic() + timeout
    while not predicate(got):
        assert time.monotonic() < deadline, f"no such replies in {timeout} s: {got}"
        got += writer.wait_reply(0.2)
    return got


@pytest.fixture
def writer():
    w = AofWriterProcess("test-writer")
    yield w
    w.stop()


def test_appends_reach_the_file_and_are_reported_fsynced(tmp_path, writer):
    path = tmp_path / "appendonly.aof"
    path.write_bytes(b"")
    writer.open(str(path))
    for token in (1, 2, 3):
        writer.append(token, b"record-%d\n" % token)
    got = replies_until(writer, lambda r: r and r[-1][0] == 3)
    assert all(error == 0 for _, error, _, _ in got)
    assert got[-1][3] == path.stat().st_size == len(b"record-1\n") * 3
    assert path.read_bytes() == b"record-1\nrecord-2\nrecord-3\n"


def test_the_reported_size_counts_what_the_file_held_before(tmp_path, writer):
    path = tmp_path / "appendonly.aof"
    path.write_bytes(b"*1\r\n$4\r\nPING\r\n")       # an AOF the node replayed at start
    writer.open(str(path))
    writer.append(1, b"more\n")
    (token, error, _, size), = replies_until(writer, lambda r: r)
    assert (token, error) == (1, 0) and size == path.stat().st_size == 14 + 5


def test_writes_that_pile_up_share_an_fsync(tmp_path, writer):
    path = tmp_path / "appendonly.aof"
    path.write_bytes(b"")
    writer.open(str(path))
    for token in range(1, 201):
        writer.append(token, b"x" * 50)
    got = replies_until(writer, lambda r: r and r[-1][0] == 200)
    assert len(got) < 200                 # group commit: fewer fsyncs than appends
    tokens = [token for token, *_ in got]
    assert tokens == sorted(tokens)       # durability is reported in order
    assert path.stat().st_size == 200 * 50


def test_a_failing_disk_is_reported_once_and_the_bytes_land_after_it_heals(tmp_path, writer):
    path = tmp_path / "appendonly.aof"
    path.write_bytes(b"")
    writer.open(str(path))
    writer.inject_fault(errno.ENOSPC)
    writer.append(1, b"first\n")
    writer.append(2, b"second\n")
    got = replies_until(writer, lambda r: len(r) >= 1)
    assert got[0][1] == errno.ENOSPC
    assert path.read_bytes() == b""       # nothing claimed, nothing written
    writer.inject_fault(0)
    got = replies_until(writer, lambda r: r and r[-1][0] == 2 and r[-1][1] == 0)
    assert path.read_bytes() == b"first\nsecond\n"


def test_the_writer_exits_when_the_node_closes_its_end(tmp_path):
    w = AofWriterProcess("test-writer")
    pid = w.pid
    w.stop()
    assert w.process.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_handed_over_bytes_count_as_written_but_not_fsynced_until_reported(tmp_path, writer):
    aof = AppendOnlyFile(tmp_path)
    writer.open(aof.path)
    aof.handed_over(10)
    assert (aof.written_size, aof.fsynced_size) == (10, 0)   # a power loss now loses them
    writer.append(1, b"0123456789")
    (_, error, ms, size), *_ = replies_until(writer, lambda r: r)
    assert error == 0
    assert aof.fsync_completed(size, ms) == 10
    aof.close()


def test_frames_it_cannot_serve_get_an_error_reply_not_a_crash(tmp_path, writer):
    from workbench.storage._aof_writer_child import FRAME
    writer.append(1, b"no file opened yet\n")
    (token, error, _, _), = replies_until(writer, lambda r: r)
    assert (token, error) == (1, errno.EBADF)
    writer.unsent.append(FRAME.pack(9, 2, 0))      # a kind the protocol does not have
    writer.flush()
    got = replies_until(writer, lambda r: any(t == 2 for t, *_ in r))
    assert (2, errno.EINVAL) in [(t, e) for t, e, _, _ in got]
    assert writer.process.poll() is None           # still serving


def test_a_node_whose_writer_process_dies_refuses_writes_and_keeps_serving_reads():
    import signal
    import redis
    import workbench as wb
    from conftest import wait_for
    with wb.Cluster(mode="aof", nodes=1) as c:
        r = c.client()
        r.set("before", "1")
        server = c.nodes[0].server
        os.kill(server.write_behind.writer_pid, signal.SIGKILL)   # a process we started

        def refused() -> bool:
            try:
                r.set("after", "1")
            except redis.ResponseError as err:
                return str(err).startswith("MISCONF")
            return False
        wait_for(refused, what="writes to be refused with MISCONF")
        assert r.get("before") == "1"
        writer = server.write_behind
        wait_for(lambda: writer.failing, what="the node to notice its writer is gone")
