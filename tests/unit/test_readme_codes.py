"""The README's table of the codes the HIS interface accepts is the parser's
own table (issue 14: "document the codes accepted"): a code added to or
dropped from ``CODES`` without the README, or the reverse, fails here."""

from __future__ import annotations

import re
from pathlib import Path

from yibao.services.settlement.inputs import CODES

README = Path(__file__).resolve().parents[2] / "README.md"
_ROW = re.compile(r"^\| `([a-z_]+)` \| (.+) \|$")


def _documented() -> dict[str, dict[str, tuple[str, str]]]:
    text = README.read_text(encoding="utf-8")
    start = text.index("**What the interface reads")
    table: dict[str, dict[str, tuple[str, str]]] = {}
    for line in text[start:].splitlines():
        m = _ROW.match(line)
        if m is None:
            if table and not line.startswith("|"):
                break
            continue
        cells = re.split(r"; (?=`)", m.group(2))
        codes = {}
        for cell in cells:
            c = re.fullmatch(r"`([0-9]+)` (\S+) \((.+)\)", cell)
            assert c is not None, cell
            codes[c.group(1)] = (c.group(2), c.group(3))
        table[m.group(1)] = codes
    return table


def test_the_readme_lists_exactly_the_codes_the_parser_accepts() -> None:
    documented = _documented()
    assert documented.keys() == CODES.keys()
    for name, codes in CODES.items():
        assert documented[name] == codes, name
