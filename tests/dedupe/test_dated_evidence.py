"""What a dated stream gives beyond words: the weekdays reports name, and groups that agree on
the whole (their centroids) where some of their pairs do not."""

from __future__ import annotations

from datetime import date

import numpy as np

from dedupe import events as ev
from dedupe.settings import DEFAULT

WEDNESDAY = date(2016, 8, 24).toordinal()


def _items(weekdays: list[set[int]], days: list[int | None]) -> ev.Items:
    terms = [{"shot": 0.6, "bridgeport": 0.8}] * len(days)
    return ev.Items(terms, [{}] * len(days), days, DEFAULT, None, weekdays)


def test_reports_naming_no_common_day_lose_weekday_clash() -> None:
    assert date.fromordinal(WEDNESDAY).weekday() == 2
    saturday, tuesday = 5, 1
    items = _items(
        [{saturday}, {tuesday}, {saturday, tuesday}, set(), {tuesday}, {saturday}],
        [WEDNESDAY, WEDNESDAY, WEDNESDAY + 1, WEDNESDAY, None, None],
    )
    sim = items.pair_similarity(np.array([[0, 1], [0, 2], [0, 3], [4, 5]]))
    # Same words, no entities, both dated: dated_mix * 1 - dated_offset = 0.4.
    same_words = DEFAULT.dated_mix - DEFAULT.dated_offset
    assert sim.tolist() == [
        # "Saturday" and "Tuesday" in Wednesday's reports: August 20 and 23.
        same_words - DEFAULT.weekday_clash,
        # Thursday's report names Saturday too: the same August 20.
        same_words,
        # A report that names no weekday says nothing either way.
        same_words,
        # Undated reports: their weekdays point at no day.
        1.0,
    ]


def _two_groups(published: list[int | None] | None) -> list[int]:
    # Items 0-2 and 3-4 each agree closely; across, five pairs agree a little and one not at
    # all, so complete link keeps the groups apart.
    sim = np.full((5, 5), 0.2)
    sim[np.ix_([0, 1, 2], [0, 1, 2])] = 0.5
    sim[np.ix_([3, 4], [3, 4])] = 0.5
    sim[2, 4] = sim[4, 2] = 0.0
    np.fill_diagonal(sim, 0.9)
    return ev.complete_link(sim, list(range(5)), item_published=published)


def test_dated_groups_whose_centroids_agree_join() -> None:
    # Centroid cosine 1.0 / sqrt(5.7 * 2.8) = 0.25 >= dated_centroid; average 0.17 < avg_join.
    assert len(set(_two_groups([WEDNESDAY] * 5))) == 1
    assert len(set(_two_groups(None))) == 2


def test_the_weekdays_a_text_names_are_read() -> None:
    from dedupe.fingerprint import fingerprint

    text = "He was shot late Saturday and died Monday; Sundays and holidays are quiet."
    assert fingerprint(text, "Vigil on Tuesday").weekdays == {5, 0, 1}
