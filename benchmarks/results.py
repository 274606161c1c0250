"""``benchmarks/RESULTS.md`` is shared by every benchmark: each owns one section between
``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` and rewrites only that."""

from __future__ import annotations

import os

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")


def replace_section(name: str, block: str, path: str = RESULTS) -> None:
    """Put ``block`` between the ``name`` markers, or append a new section at the end."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = open(path).read() if os.path.exists(path) else ""
    section = f"{start}\n{block}{end}"
    if start in text and end in text:
        text = text[:text.index(start)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    with open(path, "w") as f:
        f.write(text)
