import pytest

from yibao.domain import divisions as dv
from yibao.domain.errors import DomainError


@pytest.mark.parametrize(
    ("code", "level", "prefix", "parent"),
    [
        ("000000", dv.Level.NATION, "", None),
        ("330000", dv.Level.PROVINCE, "33", "000000"),
        ("330500", dv.Level.CITY, "3305", "330000"),
        ("330502", dv.Level.COUNTY, "330502", "330500"),
        ("330502001", dv.Level.STREET, "330502001", "330502"),
    ],
)
def test_levels_prefixes_and_parents(code, level, prefix, parent):
    assert dv.level_of(code) is level
    assert dv.scope_prefix(code) == prefix
    assert dv.parent_of(code) == parent


def test_within_is_a_subtree_test():
    assert dv.within("330502001", "330502")
    assert dv.within("330502001", "330500")
    assert dv.within("330502", "000000")
    assert not dv.within("330503001", "330502")
    assert not dv.within("320508", "330000")
    assert not dv.within("330502", "330502001")


def test_bad_codes_are_refused():
    for bad in ("33050", "3305020011", "33a502"):
        with pytest.raises(DomainError):
            dv.level_of(bad)
