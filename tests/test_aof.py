"""The AOF storage layer, on real files with real fsync."""

import os

import pytest

from workbench.resp import encode_command
from workbench.storage import (AofError, AppendOnlyFile, DurableFile, atomic_write, load,
                               scan_aof, simulate_power_loss)

SET_A = encode_command([b"SET", b"a", b"1"])
SET_B = encode_command([b"SET", b"b", b"2"])
SET_C = encode_command([b"SET", b"c", b"3"])
MULTI = encode_command([b"MULTI"])
EXEC = encode_command([b"EXEC"])


def write_file(path, data):
    path.write_bytes(data)
    return str(path)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def argvs(result):
    return [c.argv for c in result.commands]


# -- DurableFile ----------------------------------------------------------------------------

def test_durable_file_tracks_written_and_fsynced(tmp_path):
    path = tmp_path / "sub" / "f.log"                 # parent directory is created
    with DurableFile.open(path) as f:
        assert (f.written_size, f.fsynced_size) == (0, 0)
        assert f.write(b"hello") == 5
        assert (f.written_size, f.fsynced_size) == (5, 0)
        assert f.fsync() == 5
        f.write(b" world")
        assert (f.written_size, f.fsynced_size) == (11, 5)
        f.truncate(3)
        assert (f.written_size, f.fsynced_size) == (3, 3)
    assert path.read_bytes() == b"hel"
    assert f.closed
    with pytest.raises(ValueError):
        f.write(b"x")


def test_durable_file_reopen_starts_fully_fsynced(tmp_path):
    path = write_file(tmp_path / "f.log", b"abc")
    with DurableFile(path) as f:
        assert (f.written_size, f.fsynced_size) == (3, 3)
        f.write(b"de")                                   # O_APPEND: goes to the end
    assert read(path) == b"abcde"


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    path = write_file(tmp_path / "f", b"old content, longer")
    atomic_write(path, b"new")
    assert read(path) == b"new"
    assert os.listdir(tmp_path) == ["f"]


def test_simulate_power_loss_keeps_only_fsynced_bytes(tmp_path):
    path = write_file(tmp_path / "f", b"0123456789")
    assert simulate_power_loss(path, 4) == 6
    assert read(path) == b"0123"
    assert simulate_power_loss(path, 4) == 0
    assert simulate_power_loss(tmp_path / "missing", 0) == 0


# -- AppendOnlyFile ------------------------------------------------------------------------

def test_feed_flush_fsync_sizes(tmp_path):
    aof = AppendOnlyFile(tmp_path)
    assert aof.path == str(tmp_path / "appendonly.aof")
    aof.feed(SET_A)
    aof.feed(SET_B)
    assert (aof.buffered, aof.written_size, aof.fsynced_size) == (len(SET_A + SET_B), 0, 0)
    assert aof.flush() == len(SET_A + SET_B)
    assert (aof.buffered, aof.written_size, aof.fsynced_size) == (0, len(SET_A + SET_B), 0)
    assert aof.flush() == 0
    assert aof.fsync() == len(SET_A + SET_B)
    assert aof.fsynced_size == len(SET_A + SET_B)
    assert (aof.write_count, aof.fsync_count, aof.last_write_status) == (1, 1, "ok")
    assert aof.last_fsync_ms >= 0
    aof.close()
    assert argvs(load(aof.path)) == [[b"SET", b"a", b"1"], [b"SET", b"b", b"2"]]


def test_power_loss_keeps_the_fsynced_commands(tmp_path):
    aof = AppendOnlyFile(tmp_path)
    for cmd in (SET_A, SET_B):
        aof.feed(cmd)
        aof.flush()
    aof.fsync()
    aof.feed(SET_C)
    aof.flush()
    assert aof.written_size == len(SET_A + SET_B + SET_C)
    durable = aof.fsynced_size
    assert durable == len(SET_A + SET_B)
    aof.close()                                        # the process dies with the power
    assert simulate_power_loss(aof.path, durable) == len(SET_C)
    result = load(aof.path)
    assert argvs(result) == [[b"SET", b"a", b"1"], [b"SET", b"b", b"2"]]
    assert [c.end for c in result.commands] == [len(SET_A), len(SET_A + SET_B)]
    assert not result.truncated and result.warnings == []


def test_power_loss_mid_command_is_a_truncated_tail(tmp_path):
    aof = AppendOnlyFile(tmp_path)
    aof.feed(SET_A)
    aof.flush()
    aof.fsync()
    aof.close()
    with open(aof.path, "ab") as f:                    # a crash in the middle of a write
        f.write(SET_B[:7])
    assert argvs(load(aof.path)) == [[b"SET", b"a", b"1"]]


def test_rewrite_replaces_the_file_atomically(tmp_path):
    aof = AppendOnlyFile(tmp_path)
    aof.feed(SET_A + SET_B + SET_C)
    aof.flush()
    aof.feed(SET_C)                                    # buffered for the old dataset
    base = encode_command([b"SET", b"x", b"base"])
    aof.rewrite(base)
    assert (aof.written_size, aof.fsynced_size, aof.buffered) == (len(base), len(base), 0)
    assert read(aof.path) == base
    assert sorted(os.listdir(tmp_path)) == ["appendonly.aof"]
    aof.feed(SET_A)                                    # appending continues after the base
    aof.flush()
    aof.close()
    assert argvs(load(aof.path)) == [[b"SET", b"x", b"base"], [b"SET", b"a", b"1"]]


# -- load ------------------------------------------------------------------------------------

def test_missing_file_is_empty(tmp_path):
    result = load(tmp_path / "nope.aof")
    assert (result.commands, result.size, result.truncated_at) == ([], 0, None)


def test_truncated_tail_is_cut_with_valkey_warnings(tmp_path):
    good = SET_A + SET_B
    f = write_file(tmp_path / "appendonly.aof", good + SET_C[:-3])
    result = load(f)
    assert argvs(result) == [[b"SET", b"a", b"1"], [b"SET", b"b", b"2"]]
    assert result.truncated_at == len(good)
    assert result.size == len(good + SET_C) - 3
    assert result.warnings == [
        f"!!! Warning: short read while loading the AOF file {f}!!!",
        f"!!! Truncating the AOF {f} at offset {len(good)} !!!",
        f"AOF {f} loaded anyway because aof-load-truncated is enabled",
    ]
    assert read(f) == good                 # the file itself was truncated


@pytest.mark.parametrize("cut", range(1, len(SET_C)))
def test_every_prefix_of_a_command_is_truncation_not_corruption(tmp_path, cut):
    f = write_file(tmp_path / "a.aof", SET_A + SET_C[:cut])
    assert load(f).truncated_at == len(SET_A)


def test_truncated_tail_with_load_truncated_off_raises(tmp_path):
    data = SET_A + SET_B[:5]
    f = write_file(tmp_path / "appendonly.aof", data)
    with pytest.raises(AofError) as e:
        load(f, load_truncated=False)
    assert str(e.value) == (
        f"Unexpected end of file reading the append only file {f}. You can: 1) Make a "
        f"backup of your AOF file, then use `workbench check-aof --fix {f}`. 2) Alternatively "
        "you can set the 'aof-load-truncated' configuration option to yes and restart the "
        "server.")
    assert e.value.offset == len(SET_A)
    assert read(f) == data                 # not modified


@pytest.mark.parametrize("where, bad, offset_in_b", [
    ("header", b"X", 0),                 # a command not starting with '*'
    ("crlf", b"*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\n2XY", 25),   # bulk not followed by CRLF
    ("bulk", b"*3\r\n$3\r\nSET\r\n%1\r\n", 13),                # '%' where '$' belongs
    ("length", b"*3\r\n$-1\r\n", 5),                            # negative bulk length
])
def test_corruption_in_the_middle_names_file_and_offset(tmp_path, where, bad, offset_in_b):
    data = SET_A + bad + SET_C
    f = write_file(tmp_path / "appendonly.aof", data)
    with pytest.raises(AofError) as e:
        load(f)
    offset = len(SET_A) + offset_in_b
    assert str(e.value) == (
        f"Bad file format reading the append only file {f} at offset {offset}: make a backup "
        f"of your AOF file, then use `workbench check-aof --fix {f}`")
    assert (e.value.path, e.value.offset) == (f, offset)
    assert read(f) == data                 # not modified


def test_corrupt_byte_flipped_in_the_middle(tmp_path):
    data = bytearray(SET_A + SET_B + SET_C)
    data[len(SET_A)] = ord("!")                        # SET_B's '*' becomes '!'
    f = write_file(tmp_path / "appendonly.aof", bytes(data))
    with pytest.raises(AofError, match=f"at offset {len(SET_A)}:"):
        load(f)
    assert read(f) == bytes(data)


def test_multi_without_exec_at_eof_is_reverted(tmp_path):
    good = SET_A + MULTI + SET_B + EXEC
    f = write_file(tmp_path / "appendonly.aof", good + MULTI + SET_C)
    result = load(f)
    assert argvs(result) == [[b"SET", b"a", b"1"], [b"MULTI"], [b"SET", b"b", b"2"], [b"EXEC"]]
    assert result.truncated_at == len(good)
    assert result.warnings[0] == f"Revert incomplete MULTI/EXEC transaction in AOF file {f}"
    assert result.warnings[1:] == [
        f"!!! Warning: short read while loading the AOF file {f}!!!",
        f"!!! Truncating the AOF {f} at offset {len(good)} !!!",
        f"AOF {f} loaded anyway because aof-load-truncated is enabled",
    ]
    assert read(f) == good


def test_partial_command_inside_multi_reverts_the_whole_transaction(tmp_path):
    f = write_file(tmp_path / "appendonly.aof", SET_A + MULTI + SET_B + SET_C[:4])
    result = load(f)
    assert argvs(result) == [[b"SET", b"a", b"1"]]
    assert read(f) == SET_A


def test_multi_without_exec_with_load_truncated_off_raises(tmp_path):
    f = write_file(tmp_path / "appendonly.aof", SET_A + MULTI + SET_B)
    with pytest.raises(AofError, match="^Unexpected end of file"):
        load(f, load_truncated=False)


def test_unbalanced_exec_is_corruption(tmp_path):
    f = write_file(tmp_path / "appendonly.aof", SET_A + EXEC + SET_B)
    with pytest.raises(AofError) as e:
        load(f)
    assert (e.value.offset, e.value.reason) == (len(SET_A), "Unexpected EXEC")


def test_annotations_are_skipped(tmp_path):
    data = b"#TS:1700000000\r\n" + SET_A + b"# a note\n" + SET_B
    f = write_file(tmp_path / "appendonly.aof", data)
    result = load(f)
    assert argvs(result) == [[b"SET", b"a", b"1"], [b"SET", b"b", b"2"]]
    assert result.commands[-1].end == len(data)
    assert not result.truncated


def test_binary_arguments_with_crlf_inside(tmp_path):
    value = b"line1\r\nline2\x00*$#"
    f = write_file(tmp_path / "a.aof", encode_command([b"SET", b"k", value]))
    assert argvs(load(f)) == [[b"SET", b"k", value]]


def test_scan_counts_protocol_lines():
    scan = scan_aof(SET_A + b"#x\n" + SET_B[:3])
    assert (scan.status, scan.ok_up_to, scan.ok_up_to_line) == ("truncated", len(SET_A) + 3, 9)


def test_failed_write_cuts_the_partial_record_and_keeps_the_buffer(tmp_path, monkeypatch):
    aof = AppendOnlyFile(tmp_path)
    real_write = os.write
    calls = []

    def short_then_enospc(fd, data):
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[:5]))     # a short write...
        raise OSError(28, "No space left on device")    # ...then the disk is full

    aof.feed(SET_A)
    monkeypatch.setattr(os, "write", short_then_enospc)
    with pytest.raises(OSError):
        aof.flush()
    monkeypatch.undo()
    assert aof.last_write_status == "err"
    assert (aof.written_size, aof.buffered) == (0, len(SET_A))
    assert read(aof.path) == b""          # no half command left behind
    assert aof.flush() == len(SET_A)                   # the retry writes it whole
    assert aof.last_write_status == "ok"
    aof.close()
    assert argvs(load(aof.path)) == [[b"SET", b"a", b"1"]]


def test_fsync_from_another_thread(tmp_path):
    import threading
    aof = AppendOnlyFile(tmp_path)
    aof.feed(SET_A)
    aof.flush()
    t = threading.Thread(target=aof.fsync)             # the background fsync ("BIO")
    t.start()
    aof.feed(SET_B)
    aof.flush()                                        # the loop keeps writing meanwhile
    t.join()
    assert len(SET_A) <= aof.fsynced_size <= aof.written_size == len(SET_A + SET_B)
    assert aof.fsync() == len(SET_A + SET_B)
    aof.close()


# -- records no server writes --------------------------------------------------------------

@pytest.mark.parametrize("bad, reason", [
    (encode_command([b"NOSUCH", b"a"]), "Unknown command 'NOSUCH'"),
    (b"*1\r\n$3\r\nSET\r\n", "Wrong number of arguments (1) for 'set' command"),
    (encode_command([b"SELECT", b"abc"]), "Invalid DB index 'abc' in SELECT"),
    (encode_command([b"SELECT", b"-1"]), "Invalid DB index '-1' in SELECT"),
])
def test_a_record_no_server_writes_is_refused_naming_file_and_offset(tmp_path, bad, reason):
    """Repro: an AOF record naming an unknown command crashed the start with ``TypeError:
    AofError.__init__() missing ... 'path' and 'offset'``, and ``*1\\r\\n$3\\r\\nSET\\r\\n``
    with a bare ``IndexError`` from inside SET. Both are damage, refused like any other."""
    data = SET_A + bad + SET_B
    f = write_file(tmp_path / "appendonly.aof", data)
    with pytest.raises(AofError) as e:
        load(f)
    assert str(e.value) == (
        f"{reason} reading the append only file {f} at offset {len(SET_A)}: make a backup "
        f"of your AOF file, then use `workbench check-aof --fix {f}`")
    assert (e.value.path, e.value.offset, e.value.reason) == (f, len(SET_A), reason)
    assert read(f) == data                 # not modified


def test_select_beyond_the_nodes_databases_is_refused(tmp_path):
    f = write_file(tmp_path / "appendonly.aof", SET_A + encode_command([b"SELECT", b"16"]))
    assert len(load(f).commands) == 2                  # the file alone cannot tell
    with pytest.raises(AofError, match=rf"^DB index 16 is out of range in SELECT \(databases "
                                       rf"16\) reading the append only file .* at offset "
                                       rf"{len(SET_A)}:"):
        load(f, databases=16)
    assert len(load(f, databases=17).commands) == 2


def test_a_torn_record_is_still_a_truncated_tail_whatever_command_it_names(tmp_path):
    f = write_file(tmp_path / "appendonly.aof", SET_A + encode_command([b"NOSUCH", b"a"])[:-3])
    assert argvs(load(f)) == [[b"SET", b"a", b"1"]]
    assert read(f) == SET_A


def test_logged_commands_know_where_they_start(tmp_path):
    data = SET_A + b"#TS:1700000000\r\n" + SET_B
    result = load(write_file(tmp_path / "appendonly.aof", data))
    assert [(c.start, c.end) for c in result.commands] == [
        (0, len(SET_A)), (len(data) - len(SET_B), len(data))]
