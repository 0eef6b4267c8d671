"""When a report says its event happened: the dates it mentions, less the history it recalls,
and its publication day first when that is a fact."""

from __future__ import annotations

from datetime import UTC, datetime

import dedupe
from dedupe.fingerprint import fingerprint
from dedupe.records import Document

OBITUARY = (
    "W. Mark Felt, the FBI official who was Deep Throat, died on Thursday at 95. Felt was born "
    "on August 17, 1913, in Twin Falls, Idaho. After the break-in of June 17, 1972, he guided "
    "reporters of The Washington Post, and in 2005 he told Vanity Fair he had been their source."
)


def test_dates_long_before_the_latest_year_a_text_names_are_history() -> None:
    assert fingerprint(OBITUARY).dates == ()
    assert fingerprint(
        "Fred LaRue died on July 27, 2004. He delivered the hush money after June 17, 1972."
    ).dates == ("2004-07-27",)
    # A report of January 2015 that recalls the last days of 2014 keeps that date.
    assert fingerprint(
        "The suspect has been held since Dec. 30, 2014, and a hearing is set for January 2015."
    ).dates == ("2014-12-30",)


SHOOTING = (
    "Jordan Ellis was shot in the chest outside a barbershop on Maple Avenue in Hartsville late "
    "Saturday, county police said. Officers found Ellis near the curb and took him to Mercy "
    "Regional Medical Center. Detectives are looking for a black pickup truck seen leaving the "
    "block and ask witnesses to call the Hartsville tip line. "
)
T0 = datetime(2016, 8, 21, 12, tzinfo=UTC)


def test_a_dated_report_recalling_an_old_date_stays_with_its_event() -> None:
    # The second write-up recalls the shop's opening date; its publication day says when it
    # was written, and the two reports are one shooting.
    docs = [
        Document(doc_id="a", text=SHOOTING * 2, title="Man shot on Maple Avenue",
                 published_at=T0),
        Document(doc_id="b", text=SHOOTING * 2 + "The barbershop opened on May 3, 1990.",
                 title="Man shot outside Hartsville barbershop", published_at=T0),
    ]
    by_id = {a.doc_id: a.event_id for a in dedupe.group(docs).assignments}
    assert by_id["a"] is not None and by_id["a"] == by_id["b"]
