"""Head names and the exception tree."""

from __future__ import annotations

import pytest

from attnlens import errors
from attnlens.heads import HeadRef, parse_heads


def test_head_names_round_trip():
    ref = HeadRef(12, 3)
    assert ref.name == "L12H3" == str(ref)
    assert HeadRef.parse("L12H3") == ref


@pytest.mark.parametrize("bad", ["", "l1h2", "L1", "H2", "L-1H2", "L1H2x", "12.3"])
def test_malformed_head_names_are_rejected(bad: str):
    with pytest.raises(errors.HeadOutOfRange, match="L<layer>H<head>"):
        HeadRef.parse(bad)


def test_parse_heads_checks_range_and_dedups():
    assert parse_heads(["L0H1", "L0H1", HeadRef(1, 0)], 2, 2) == {HeadRef(0, 1), HeadRef(1, 0)}
    with pytest.raises(errors.HeadOutOfRange, match="layers 0-1"):
        parse_heads(["L2H0"], 2, 2)


def test_every_error_has_a_status_and_a_unique_code():
    classes = [
        c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.AttnLensError)
    ]
    assert len(classes) >= 20
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes))
    assert all(400 <= c.status <= 599 for c in classes)
    assert issubclass(errors.AttentionUnavailable, errors.ModelError)
