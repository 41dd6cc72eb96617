import itertools

import pytest

from yibao.domain.cards import TRANSITIONS, CardStatus, check_move
from yibao.domain.errors import DomainError

S = CardStatus
ALLOWED = {
    (S.APPLIED, S.IN_PRODUCTION),
    (S.APPLIED, S.CANCELLED),
    (S.IN_PRODUCTION, S.READY),
    (S.IN_PRODUCTION, S.CANCELLED),
    (S.READY, S.ISSUED),
    (S.READY, S.CANCELLED),
    (S.ISSUED, S.LOST),
    (S.ISSUED, S.FROZEN),
    (S.ISSUED, S.CANCELLED),
    (S.FROZEN, S.ISSUED),
    (S.FROZEN, S.LOST),
    (S.FROZEN, S.CANCELLED),
    (S.LOST, S.ISSUED),
    (S.LOST, S.CANCELLED),
}


@pytest.mark.parametrize(("a", "b"), list(itertools.product(S, S)))
def test_card_moves_only_along_its_lifecycle(a, b):
    if (a, b) in ALLOWED:
        check_move(a, b)
    else:
        with pytest.raises(DomainError) as err:
            check_move(a, b)
        assert err.value.code == "card.bad_transition"


def test_cancelled_is_final():
    assert TRANSITIONS[S.CANCELLED] == frozenset()
