"""The event fingerprint of one article: weighted salient terms, the numbers and dates it
mentions, its named entities and places.

Term weights are TF-IDF where the IDF comes from a general English word-frequency table
(wordfreq), not from the documents at hand: a term's weight then never changes when more
articles arrive, so incremental runs compare the same vectors a single run would, and a
first run over twenty articles weighs words as well as one over twenty thousand.
"""

from __future__ import annotations

import heapq
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import TypeVar

from wordfreq import get_frequency_dict

from dedupe.parallel import map_chunks
from dedupe.people import NOT_NAMES, people
from dedupe.text import titled

_T = TypeVar("_T")

_TOKEN = re.compile(r"[A-Za-z][\w'’\-]*|\d[\d,.]*")
# Named entities, roughly: runs of capitalised words that follow a lower-case word, so that
# the capital is not just the start of a sentence ("... met Prime Minister Ishiba Shigeru").
# The lookbehind comes after the first capital, not before it: the same matches, but the
# engine skips to capitals instead of trying the lookbehind at every character (0.07 -> 0.04
# ms per text). _PLACE and _YEAR below likewise test their leading word boundary after a
# literal (`(?<!\w..)` right after two letters is `\b` before them).
_ENTITY = re.compile(r"[A-Z](?<=[a-z,;] [A-Z])[\w'’\-]*(?: (?:of |de |al-)?[A-Z][\w'’\-]*)*")

# Words at or above Zipf 5.5 (more than 1 in 3,000 English words: "the", "said", "after",
# "new", "year") carry no event; dropping them is cheaper than a stop-word list and agrees
# with the IDF below, which gives them at most 7.5 - 5.5 = 2.
_COMMON_ZIPF = 5.5
# idf(w) = 7.5 - zipf(w), clamped to [0, 7]: a word seen once per million (Zipf 3, e.g.
# "rehab") weighs 4.5, a name seen once per billion ("Blinken", Zipf 1.7) 5.8, an unknown
# token 7. Zipf is log10 of frequency per billion, so this is log10 IDF up to a constant.
_IDF_TOP = 7.5
_IDF_MAX = 7.0
# Numbers (scores, death tolls, magnitudes, years) are as specific as rare names; wordfreq
# folds digits together, so they get a fixed weight. On ECB+ dev adding them at 6.0 raised the
# same-topic pair AUC (same event vs the sibling event of the same kind) from 0.898 to 0.916.
_NUMBER_WEIGHT = 6.0
# Terms kept per document (by weight). Enough for the centroid/cosine to see every salient
# term of a 300-word article (ECB+ dev articles have 140 distinct kept terms at the median).
TOP_TERMS = 160
# Tried on ECB+ dev and left off: counting headline words twice (B-cubed F1 0.919 -> 0.919)
# and weighting entity words 1.5x (0.903).
HEADLINE_BOOST = 0
ENTITY_BOOST = 1.0
# Terms that go into the blocking MinHash.
BLOCK_TERMS = 24

_MONTHS = {
    m: i + 1
    for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun",
                           "jul", "aug", "sep", "oct", "nov", "dec"])
}
_MONTH = (r"(Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
          r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?")
_DATE_MDY = re.compile(_MONTH + r"\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+((?:19|20)\d\d)\b", re.I)
_DATE_DMY = re.compile(r"\b(\d{1,2})\s+" + _MONTH + r",?\s+((?:19|20)\d\d)\b", re.I)
_DATE_ISO = re.compile(r"\b((?:19|20)\d\d)-(\d\d)-(\d\d)\b")
_VIRTUAL = re.compile(
    r"\b(?:met|meet|meeting|held|talks?) virtually\b|\bvirtual (?:meeting|talks|summit)|"
    r"\bvideo ?conference\b",
    re.I,
)
# Capitalised words after "in/at/from" that are not places: months, days, titles, articles.
_NOT_PLACES = NOT_NAMES
_PLACE = re.compile(r"(?:in|at)(?<!\w..) ((?:[A-Z][a-z]+)(?: [A-Z][a-z]+){0,2})")


@cache
def _zipf_table() -> dict[str, float]:
    # Loaded once per process (~0.4 s): word -> Zipf (log10 frequency per billion words).
    # A plain lookup rather than wordfreq.zipf_frequency, which re-tokenises each word and
    # made fingerprinting ~10x slower.
    return {w: math.log10(f) + 9.0 for w, f in get_frequency_dict("en", "best").items()}


def _zipf(word: str) -> float:
    return _zipf_table().get(word, 0.0)


def idf(term: str) -> float:
    if term.startswith("#"):
        return _NUMBER_WEIGHT
    return max(0.0, min(_IDF_MAX, _IDF_TOP - _zipf(term)))


@dataclass(frozen=True)
class Fingerprint:
    terms: dict[str, float]  # unit-length TF-IDF vector over the top terms
    entities: tuple[str, ...]  # capitalised phrases, most frequent first
    places: tuple[str, ...]
    dates: tuple[str, ...]  # ISO dates mentioned in the text, most frequent first
    setting: str | None = None  # where the text says the event took place, if it says so
    repeated: frozenset[str] = frozenset()  # top terms used at least twice
    people: frozenset[str] = frozenset()  # people named with an age: "brandon stallings|18"
    weekdays: frozenset[int] = frozenset()  # days of the week the text names, Monday = 0

    def block_terms(self) -> list[str]:
        return sorted(self.terms, key=lambda t: (-self.terms[t], t))[:BLOCK_TERMS]


class _Terms(dict[str, "tuple[str, float] | None"]):
    """token -> (term, idf), or None for a common word; each distinct token is looked at once,
    later lookups are a dict hit in C (fingerprint maps over the tokens)."""

    def __missing__(self, token: str) -> tuple[str, float] | None:
        result: tuple[str, float] | None
        if token[0].isdigit():
            number = token.rstrip(".,").replace(",", "")
            result = ("#" + number, _NUMBER_WEIGHT) if number else None
        else:
            word = normal_term(token)
            result = None if _zipf(word) >= _COMMON_ZIPF else (word, idf(word))
        self[token] = result
        return result


_TERMS = _Terms()

_POSSESSIVE = re.compile(r"['’]s$")


def normal_term(token: str) -> str:
    """The term of a word token: lower case, one apostrophe, no possessive ("Sheriff’s" and
    "sheriff's" are one term, "Reba's" and "Reba" too): outlets differ in exactly these."""
    return _POSSESSIVE.sub("", token.lower()).replace("’", "'")


def term_idf(token: str) -> tuple[str, float] | None:
    """A word token's term and IDF, None for a common word (looked up once per token)."""
    return _TERMS[token]


# Rarer than this (IDF; Zipf below ~4.5) a headline word names something: "Killeen", "DeKalb",
# "weapons", not "shooting" or "police".
_HEADLINE_IDF = 3.0


def headline_terms(headline: str) -> frozenset[str]:
    """The rare words of a headline, as terms."""
    hits = (term_idf(t) for t in _TOKEN.findall(headline) if t[0].isalpha())
    return frozenset(h[0] for h in hits if h is not None and h[1] >= _HEADLINE_IDF)


_YEAR = re.compile(r"(?:19|20)(?<!\w..)\d\d\b")


# A full date from more than this many years before the latest year a text names is
# background, not the text's event: an obituary's birth and career dates, the break-in a
# Watergate figure's death recalls. One year of slack keeps "Dec. 30, 2014" in a January 2015
# report. ECB+ dev: B-cubed F1 0.927 with every date -> 0.934 (halves 0.936/0.917 ->
# 0.938/0.929); the same at 0, 1 and 2 years.
BACKGROUND_YEARS = 1


def _dates(text: str) -> Counter[str]:
    """The full dates a text mentions, with counts, leaving out background dates."""
    found: Counter[str] = Counter()
    # The date patterns are slow on whole articles; every full date holds a year, so only
    # the few windows around years are searched.
    years = list(_YEAR.finditer(text))
    if not years:
        return found
    text = " | ".join([text[max(0, m.start() - 20):m.end() + 16] for m in years])
    for m in _DATE_MDY.finditer(text):
        _add_date(found, m.group(3), _MONTHS[m.group(1)[:3].lower()], m.group(2))
    for m in _DATE_DMY.finditer(text):
        _add_date(found, m.group(3), _MONTHS[m.group(2)[:3].lower()], m.group(1))
    for m in _DATE_ISO.finditer(text):
        _add_date(found, m.group(1), int(m.group(2)), m.group(3))
    if found:
        # Four-digit years compare as strings; most texts name no full date and skip this.
        oldest = str(max(int(m.group()) for m in years) - BACKGROUND_YEARS)
        for day in [d for d in found if d[:4] < oldest]:
            del found[day]
    return found


def _add_date(found: Counter[str], year: str, month: int, day: str) -> None:
    try:
        found[date(int(year), month, int(day)).isoformat()] += 1
    except ValueError:
        pass


def fingerprint(text: str, title: str = "") -> Fingerprint:
    full = titled(text, title)
    # Count raw tokens in C (Counter over findall), then map each distinct token once.
    tf: Counter[tuple[str, float]] = Counter()
    counts = Counter(_TOKEN.findall(full))
    for hit, count in zip(map(_TERMS.__getitem__, counts), counts.values(), strict=True):
        if hit is not None:
            tf[hit] += count
    if HEADLINE_BOOST:
        head = next((line for line in full.splitlines() if line.strip()), "")
        for token in set(_TOKEN.findall(head)):
            hit = term_idf(token)
            if hit is not None:
                tf[hit] += HEADLINE_BOOST
    entities = Counter(_ENTITY.findall(full))
    weights = {t: (1.0 + math.log(c)) * w for (t, w), c in tf.items() if w > 0.0}
    if ENTITY_BOOST != 1.0:
        for e in entities:
            for part in e.lower().split():
                if part in weights:
                    weights[part] *= ENTITY_BOOST
    top = (
        list(weights)
        if len(weights) <= TOP_TERMS
        else heapq.nsmallest(TOP_TERMS, weights, key=lambda t: (-weights[t], t))
    )
    norm = math.sqrt(sum(weights[t] ** 2 for t in top)) or 1.0
    places: Counter[str] = Counter(
        m.group(1) for m in _PLACE.finditer(full) if m.group(1).split()[0] not in _NOT_PLACES
    )
    setting = _setting(full)
    if setting == "virtual":
        places["virtual"] += 2
    return Fingerprint(
        terms={t: weights[t] / norm for t in top},
        entities=tuple(e for e, _ in entities.most_common(20)),
        places=tuple(p for p, _ in places.most_common(5)),
        dates=tuple(d for d, _ in _dates(full).most_common(5)),
        setting=setting,
        repeated=frozenset(t for (t, _), c in tf.items() if c >= 2 and t in weights),
        people=people(full),
        weekdays=frozenset(_WEEKDAYS[m] for m in _WEEKDAY.findall(full)),
    )


# A dated report says which day something happened by its weekday ("shot late Saturday",
# "died Monday"): with the publication day, each names one day of the week before it.
# No leading \b: the engine would try it at every character, not only at the capitals, and a
# capitalised weekday glued to the end of another word is rare.
_WEEKDAY = re.compile(r"(Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day\b")
_WEEKDAYS = {d: i for i, d in enumerate(["Mon", "Tues", "Wednes", "Thurs", "Fri", "Satur", "Sun"])}


# Below this many texts fingerprinting stays in this process: starting a fork pool costs more
# than it saves on a small batch. Chunks small enough that the two workers finish close
# together, large enough that pickling round trips stay few (bench grouping rows show both).
PARALLEL_MIN = 1000
_CHUNK = 250


def _fingerprint_range(
    job: tuple[Sequence[tuple[str, str]], Callable[[list[Fingerprint]], list[_T]]],
    start: int,
    stop: int,
) -> list[_T]:
    jobs, then = job
    return then([fingerprint(text, title) for text, title in jobs[start:stop]])


def map_fingerprints(
    jobs: Sequence[tuple[str, str]],
    then: Callable[[list[Fingerprint]], list[_T]],
    workers: int | None = None,
) -> list[_T]:
    """`then` of fingerprint(text, title) for each (text, title) of `jobs`, chunk by chunk, in
    order. Large batches are split over `workers` forked processes (default: the CPU count, at
    most 2), so that what is derived from each fingerprint is computed in parallel too and only
    the result travels back; `then` must map each fingerprint alone, in order, and the result
    is the same as the serial loop's."""
    parallel = len(jobs) >= PARALLEL_MIN
    if parallel:
        _zipf_table()  # loaded once here, shared by the forked workers (copy-on-write)
    parts = map_chunks(_fingerprint_range, (jobs, then), len(jobs), _CHUNK, parallel, workers)
    return [r for part in parts for r in part]


# A sentence that says when and where: a month and day, and "in/at <Place>" ("On January 7,
# 2025, ... met ... in Tokyo", "on December 11, in Liverpool"). Only such sentences name the
# event's setting; other place mentions (a venue, the country, a past event) vary between
# write-ups of one event: on ECB+ dev, vetoing on the most-mentioned place dropped B-cubed F1
# from 0.930 to 0.77.
_MONTH_DAY = re.compile(_MONTH + r"\s+\d{1,2}\b")
# Splits after "[a-z]{2}[.!?]" + whitespace (not after "U.S.") and at runs of newlines. Written
# as `(?<=[a-z]{2}[.!?])\s+|\n+` it splits identically but runs the lookbehind at every
# character; leading with `\s` lets the engine skip to whitespace (0.19 -> 0.07 ms per text
# on the bench corpus, identical splits on it and ECB+ dev).
_SENTENCES = re.compile(r"\s(?:(?<=[a-z]{2}[.!?]\s)\s*|(?<=\n)\n*)")


def _setting(full: str) -> str | None:
    # Every _VIRTUAL match holds "rtual" or "deo" (letters with no special case-insensitive
    # equivalents, unlike i/s/k), so a substring test skips the slow case-insensitive
    # search on most texts (0.14 -> 0.03 ms per text).
    low = full.lower()
    if ("rtual" in low or "deo" in low) and _VIRTUAL.search(full):
        return "virtual"
    if not _MONTH_DAY.search(full):
        return None
    for sentence in _SENTENCES.split(full):
        if not _MONTH_DAY.search(sentence):
            continue
        for m in _PLACE.finditer(sentence):
            if m.group(0).startswith("in ") and m.group(1).split()[0] not in _NOT_PLACES:
                return m.group(1)
    return None
