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


SHOOTING = (
    "Brandon Lee Stallings, 18, of Prince Frederick, was shot in the leg outside a convenience "
    "store on Edgewater Road late Saturday, Anne Arundel County police said. Officers found "
    "Stallings bleeding near the gas pumps and flew him to Shock Trauma in Baltimore. Detectives "
    "are looking for a gray sedan seen leaving the lot and ask witnesses to call the tip line."
)
ARREST = (
    "Anne Arundel County police arrested a Glen Burnie man in the Edgewater Road shooting that "
    "wounded Brandon Stallings, 18, outside a convenience store in July. Detectives traced the "
    "gray sedan seen leaving the lot to the suspect, who faces attempted murder and assault "
    "charges. Stallings has recovered from the gunshot wound to his leg, police said."
)


def _shooting_and_arrest(arrest: str, gap: timedelta) -> tuple[str | None, str | None]:
    docs = [
        Document(doc_id="shot", text=SHOOTING, title="Man shot in Edgewater", published_at=T0),
        Document(doc_id="arrest", text=arrest, title="Arrest in Edgewater shooting",
                 published_at=T0 + gap),
    ]
    by_id = {a.doc_id: a for a in dedupe.group(docs).assignments}
    return by_id["shot"].event_id, by_id["arrest"].event_id


def test_a_follow_up_naming_the_same_person_and_age_joins_weeks_later() -> None:
    shot, arrest = _shooting_and_arrest(ARREST, timedelta(days=40))
    assert shot is not None and shot == arrest


def test_a_follow_up_in_a_later_run_joins_through_the_stored_state() -> None:
    from dedupe.runs import group_in_runs

    shot = Document(doc_id="shot", text=SHOOTING, title="Man shot", published_at=T0)
    arrest = Document(doc_id="arrest", text=ARREST, title="Arrest in shooting",
                      published_at=T0 + timedelta(days=40))
    placed = group_in_runs([[shot], [arrest]])
    assert placed["shot"].event_id == placed["arrest"].event_id


def test_a_follow_up_without_the_person_stays_apart_weeks_later() -> None:
    other = ARREST.replace("Brandon Stallings, 18,", "a teenager")
    shot, arrest = _shooting_and_arrest(other, timedelta(days=40))
    assert shot is not None and arrest is not None and shot != arrest
    # Within the days write-ups of one happening appear in, the words alone join them.
    shot, arrest = _shooting_and_arrest(other, timedelta(days=2))
    assert shot == arrest


def test_people_are_read_with_their_age() -> None:
    from dedupe.fingerprint import people

    assert people(SHOOTING) == {"brandon stallings|18"}
    assert people("police said 24-year-old Andre Jones was shot; a 19-year-old man, Carl T. "
                  "Smith, was hurt. Officer Mary-Ann O'Neil, 33, and John Smith Jr., 45, saw it"
                  ) == {"andre jones|24", "carl smith|19", "mary o'neil|33", "john smith|45"}
    # Dates, scores and titles are not people with ages.
    assert people("On August 5, 2016, Lakers 102, Celtics 99. President Biden, 81, said") == set()
