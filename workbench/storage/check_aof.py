"""``workbench check-aof [--fix] FILE``: find where an AOF stops being valid, and cut there.

It mirrors ``valkey-check-aof`` on a single (non-manifest) AOF file. It reads the file
with the same scanner the loader uses (:func:`workbench.storage.aof.scan_aof`), so the
checker and the loader can never disagree about where the good part ends, and prints::

    AOF analyzed: filename=<f>, size=<n>, ok_up_to=<n>, ok_up_to_line=<n>, diff=<n>

``ok_up_to`` is the end of the last complete record (an unclosed ``MULTI`` does not
count), ``diff`` the bytes after it. With ``diff == 0`` the file is valid. Otherwise the
tail is either truncated or corrupt, and ``--fix`` cuts the file at ``ok_up_to``. A record
naming an unknown command, or with the wrong number of arguments, is corruption too (the
loader refuses it); ``--databases N`` also checks each ``SELECT`` against the node's
``databases``, which the file alone does not tell.

Know what ``--fix`` costs: for corruption in the *middle* of the file, every command
after the bad byte is thrown away too, good or not. Make a backup first.

Unlike valkey-check-aof, ``--fix`` does **not** ask "Continue? [y/N]": it runs in CI and
notebooks where there is no terminal to answer. The prompt's text is still printed.
"""

from __future__ import annotations

import argparse
import os
from typing import Callable

from .aof import scan_aof
from .durable_file import truncate_file

__all__ = ["check", "main"]


def check(path: str | os.PathLike, fix: bool = False, out: Callable[[str], None] = print,
          databases: int | None = None) -> int:
    """Check (and with ``fix``, repair) one AOF file; return the process exit code.

    0: valid, or successfully truncated. 1: not valid (without ``fix``), or unreadable.
    """
    f = os.fspath(path)
    try:
        with open(f, "rb") as fh:
            data = fh.read()
    except OSError as e:
        out(f"Cannot open file {f}: {e.strerror}")
        return 1
    scan = scan_aof(data, databases=databases)
    if scan.status != "ok":
        # valkey-check-aof prints the reason prefixed by the offset, in hex.
        out("0x%16x: %s" % (scan.error_offset, scan.reason))
    size, pos = len(data), scan.ok_up_to
    diff = size - pos
    out(f"AOF analyzed: filename={f}, size={size}, ok_up_to={pos}, "
        f"ok_up_to_line={scan.ok_up_to_line}, diff={diff}")
    if diff == 0:
        out(f"AOF {f} is valid")
        return 0
    if not fix:
        out(f"AOF {f} is not valid. Use the --fix option to try fixing it.")
        return 1
    out(f"This will shrink the AOF {f} from {size} bytes, with {diff} bytes, to {pos} bytes")
    try:
        truncate_file(f, pos)
    except OSError as e:
        out(f"Failed to truncate AOF {f}: {e.strerror}")
        return 1
    out(f"Successfully truncated AOF {f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; ``workbench check-aof`` calls it. Usage errors exit 2."""
    parser = argparse.ArgumentParser(
        prog="check-aof",
        description="Check an append-only file; with --fix, truncate it to its valid part "
                    "(no confirmation prompt).")
    parser.add_argument("--fix", action="store_true",
                        help="truncate the file after the last valid command")
    parser.add_argument("--databases", type=int, metavar="N",
                        help="the node's databases setting: SELECT must stay below it")
    parser.add_argument("file", help="the AOF file, e.g. appendonly.aof")
    args = parser.parse_args(argv)
    return check(args.file, fix=args.fix, databases=args.databases)


if __name__ == "__main__":
    raise SystemExit(main())
