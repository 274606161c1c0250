"""``check-aof``: exit codes, messages, and --fix making the file loadable again."""

import pytest

from workbench.resp import encode_command
from workbench.storage import check_aof, load

SET_A = encode_command([b"SET", b"a", b"1"])
SET_B = encode_command([b"SET", b"b", b"2"])
MULTI = encode_command([b"MULTI"])


def run(path, fix=False):
    lines = []
    code = check_aof.check(path, fix=fix, out=lines.append)
    return code, lines


def test_valid_file(tmp_path):
    f = tmp_path / "appendonly.aof"
    f.write_bytes(SET_A + SET_B)
    code, lines = run(f)
    size = len(SET_A + SET_B)
    assert code == 0
    assert lines == [
        f"AOF analyzed: filename={f}, size={size}, ok_up_to={size}, ok_up_to_line=15, diff=0",
        f"AOF {f} is valid",
    ]


def test_empty_file_is_valid(tmp_path):
    f = tmp_path / "appendonly.aof"
    f.write_bytes(b"")
    assert run(f) == (0, [f"AOF analyzed: filename={f}, size=0, ok_up_to=0, "
                          f"ok_up_to_line=1, diff=0", f"AOF {f} is valid"])


def test_truncated_file_is_invalid_without_fix(tmp_path):
    f = tmp_path / "appendonly.aof"
    data = SET_A + SET_B[:6]
    f.write_bytes(data)
    code, lines = run(f)
    assert code == 1
    assert lines[1:] == [
        f"AOF analyzed: filename={f}, size={len(data)}, ok_up_to={len(SET_A)}, "
        f"ok_up_to_line=8, diff=6",
        f"AOF {f} is not valid. Use the --fix option to try fixing it.",
    ]
    assert lines[0].endswith("unexpected end of file in the middle of a record")
    assert f.read_bytes() == data                       # untouched without --fix


def test_fix_truncates_and_then_load_succeeds(tmp_path):
    f = tmp_path / "appendonly.aof"
    f.write_bytes(SET_A + MULTI + SET_B)                # MULTI without EXEC at EOF
    code, lines = run(f, fix=True)
    assert code == 0
    assert lines[-1] == f"Successfully truncated AOF {f}"
    assert f.read_bytes() == SET_A
    assert run(f) == (0, [f"AOF analyzed: filename={f}, size={len(SET_A)}, "
                          f"ok_up_to={len(SET_A)}, ok_up_to_line=8, diff=0", f"AOF {f} is valid"])
    result = load(f, load_truncated=False)
    assert [c.argv for c in result.commands] == [[b"SET", b"a", b"1"]]


def test_fix_cuts_corruption_in_the_middle(tmp_path):
    f = tmp_path / "appendonly.aof"
    f.write_bytes(SET_A + b"garbage\r\n" + SET_B)
    assert run(f)[0] == 1
    code, lines = run(f, fix=True)
    assert code == 0
    assert lines[0] == "0x%16x: expected '*' or '#', got 'g'" % len(SET_A)
    assert f.read_bytes() == SET_A                      # everything after the bad byte is gone
    assert [c.argv for c in load(f).commands] == [[b"SET", b"a", b"1"]]


def test_missing_file(tmp_path):
    f = tmp_path / "nope.aof"
    code, lines = run(f)
    assert code == 1
    assert lines == [f"Cannot open file {f}: No such file or directory"]


def test_main_exit_codes(tmp_path, capsys):
    f = tmp_path / "appendonly.aof"
    f.write_bytes(SET_A + SET_B[:3])
    assert check_aof.main([str(f)]) == 1
    assert check_aof.main(["--fix", str(f)]) == 0
    assert check_aof.main([str(f)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"AOF {f} is valid"


@pytest.mark.parametrize("argv", [["--bogus"], [], ["a", "b"]])
def test_main_usage_errors_exit_2(argv):
    with pytest.raises(SystemExit) as e:
        check_aof.main(argv)
    assert e.value.code == 2


@pytest.mark.parametrize("bad, reason", [
    (encode_command([b"NOSUCH", b"a"]), "Unknown command 'NOSUCH'"),
    (b"*1\r\n$3\r\nSET\r\n", "Wrong number of arguments (1) for 'set' command"),
])
def test_records_the_loader_refuses_are_not_valid_and_fix_cuts_them(tmp_path, bad, reason):
    """Repro: check-aof called a file valid whose record named an unknown command or had
    the wrong arity, while the node crashed on it at start (TypeError / IndexError)."""
    f = tmp_path / "appendonly.aof"
    f.write_bytes(SET_A + bad + SET_B)
    size = len(SET_A + bad + SET_B)
    code, lines = run(f)
    assert code == 1
    assert lines == [
        "0x%16x: %s" % (len(SET_A), reason),
        f"AOF analyzed: filename={f}, size={size}, ok_up_to={len(SET_A)}, ok_up_to_line=8, "
        f"diff={size - len(SET_A)}",
        f"AOF {f} is not valid. Use the --fix option to try fixing it.",
    ]
    assert run(f, fix=True)[0] == 0
    assert [c.argv for c in load(f).commands] == [[b"SET", b"a", b"1"]]


def test_the_databases_option_checks_select_against_the_node(tmp_path, capsys):
    f = tmp_path / "appendonly.aof"
    f.write_bytes(SET_A + encode_command([b"SELECT", b"20"]))
    assert check_aof.main([str(f)]) == 0               # the file alone cannot tell
    assert check_aof.main(["--databases", "16", str(f)]) == 1
    assert "DB index 20 is out of range in SELECT (databases 16)" in capsys.readouterr().out
