"""The README's compatibility table is what the command table says today."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _generator():
    spec = importlib.util.spec_from_file_location("compat_table", ROOT / "scripts" / "compat_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_table_matches_the_command_table():
    generator = _generator()
    readme = (ROOT / "README.md").read_text()
    assert generator.replace_in_readme(generator.table(), readme) == readme, (
        "README.md's compatibility table is out of date: run "
        "`python scripts/compat_table.py --write`")


def test_every_valkey_group_has_a_row_and_counts_add_up():
    generator = _generator()
    valkey = generator.valkey_commands()
    text = generator.table()
    rows = [line.split("|")[1:-1] for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| group") and line.count("|") == 5]
    by_group = {cells[0].strip(): cells for cells in rows if cells[0].strip().islower()}
    for group in {doc["group"] for doc in valkey.values()}:
        assert group in by_group, group
        total, have = int(by_group[group][1]), int(by_group[group][2])
        assert total == sum(1 for doc in valkey.values() if doc["group"] == group)
        assert 0 <= have <= total


def test_every_command_sits_in_valkeys_group():
    """COMMAND DOCS reports a command's group; it must be Valkey's."""
    generator = _generator()
    valkey, ours = generator.valkey_commands(), generator.our_commands()
    wrong = {name: (spec.group, valkey[name]["group"]) for name, spec in ours.items()
             if name in valkey and spec.group != valkey[name]["group"]}
    assert wrong == {}
