"""Same-kind stories published weeks apart are two events, whatever their words share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dedupe
from dedupe.records import Document

A = (
    "Secretary of State Antony Blinken met Foreign Minister Yoshimasa Hayashi to discuss the "
    "alliance between the United States and Japan. The two ministers agreed to strengthen "
    "deterrence against North Korea's missile launches and China's pressure on Taiwan. Blinken "
    "praised Hayashi for Japan's support of sanctions on Russia. Hayashi said Tokyo would raise "
    "defence spending and deepen cooperation with Washington and Seoul on regional security. "
) * 2
B = (
    "Hayashi and Blinken held talks on Japan-U.S. security ties, officials said. North Korea's "
    "weapons tests and Chinese military activity near Taiwan topped the agenda, and the allies "
    "pledged closer coordination with South Korea. Blinken thanked Japan for backing sanctions "
    "against Moscow, while Hayashi promised higher defence budgets and stronger deterrence. "
    "Both sides called the alliance the cornerstone of peace in the Indo-Pacific region. "
) * 2
T0 = datetime(2021, 12, 11, 12, tzinfo=UTC)


def _events(gap: timedelta) -> tuple[str | None, str | None]:
    docs = [
        Document(doc_id="a", text=A, title="Blinken meets Hayashi", published_at=T0),
        Document(doc_id="b", text=B, title="Hayashi, Blinken talk security", published_at=T0 + gap),
    ]
    by_id = {a.doc_id: a for a in dedupe.group(docs).assignments}
    return by_id["a"].event_id, by_id["b"].event_id


def test_write_ups_a_day_apart_are_one_event() -> None:
    a, b = _events(timedelta(days=1))
    assert a is not None and a == b


def test_same_kind_stories_weeks_apart_are_two_events() -> None:
    a, b = _events(timedelta(days=27))
    assert a is not None and b is not None and a != b
