import pytest

from dedupe.evaluate import LabelMismatch, bcubed, pairwise


def test_perfect_and_singletons() -> None:
    gold = {"a": 1, "b": 1, "c": 2}
    assert bcubed(gold, {"a": "x", "b": "x", "c": "y"}).f1 == 1.0
    alone = bcubed(gold, {"a": None, "b": None, "c": None})
    assert alone.precision == 1.0
    assert alone.recall == pytest.approx((0.5 + 0.5 + 1) / 3)


def test_pairwise_counts_pairs() -> None:
    gold = {"a": 1, "b": 1, "c": 1, "d": 2}
    pred = {"a": 1, "b": 1, "c": 2, "d": 2}
    s = pairwise(gold, pred)
    assert s.precision == pytest.approx(1 / 2)  # (a,b) right, (c,d) wrong
    assert s.recall == pytest.approx(1 / 3)  # (a,b) of (a,b), (a,c), (b,c)


def test_bcubed_known_value() -> None:
    gold = {"a": 1, "b": 1, "c": 2}
    pred = {"a": 1, "b": 1, "c": 1}
    s = bcubed(gold, pred)
    assert s.precision == pytest.approx((2 / 3 + 2 / 3 + 1 / 3) / 3)
    assert s.recall == 1.0


def test_mismatched_items_are_a_named_error() -> None:
    with pytest.raises(LabelMismatch):
        bcubed({"a": 1}, {"b": 1})
