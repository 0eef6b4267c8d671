"""People a text names with an age: the one trace of a crime report's victim or suspect that
survives rewrites, and what links a follow-up (an arrest, a charge, a trial) to its event
weeks later. Plain `re`, no grouping code: the flow imports it to find which closed events a
run's new reports may follow up (dedupe.window)."""

from __future__ import annotations

import re

# How far apart two reports naming one person with one age may be and still be one event: a
# trial comes months or years after the crime, and its reports keep the age at the time.
# GVA dev: 0.911 at 366 days, 0.914 at 730 and 1,095 (the time_window of principal dates).
PERSON_DAYS = 1095

# Capitalised words that are neither places nor names: months, days, titles, articles.
NOT_NAMES = frozenset(
    "January February March April May June July August September October November December "
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday The This That A An His Her Their "
    "Our Mr Mrs Ms Dr President Secretary Minister Prime General Chief Senator Governor".split()
)


# A person named with an age ("Brandon Lee Stallings, 18, of Prince Frederick", "a 24-year-old
# man, Andre Jones,", "18-year-old Brandon Stallings") is the victim or suspect of a crime
# report, and the same name with the same age in two reports is one person, so one event,
# weeks apart too (an arrest, a charge, a trial), up to PERSON_DAYS. Only the age sites are
# searched, then a name is read back (or forward) from each: a name pattern tried at every
# capital is slow on whole articles.
_AGE_AFTER = re.compile(r", (?:age |aged )?(\d{1,2}),")
# Led by the literal, so the engine skips to it; the age is read back from the text before.
_YEAR_OLD = re.compile(r"-year-old\b")
_AGE_BACK = re.compile(r"(?<!\d)(\d{1,2})$")
_NAME = r"[A-Z][A-Za-z'’]+(?:[ -](?:[A-Z]\.|[A-Z][A-Za-z'’]+))*(?:,? (?:Jr|Sr)\.?|,? I{2,3})?"
_NAME_BEFORE = re.compile(r"(?<![\w.])(" + _NAME + r")$")
_NAME_AFTER = re.compile(r"^(?: [a-z]+){0,2},? (" + _NAME + r")\b")
_SUFFIX = re.compile(r",? (?:Jr|Sr)\.?$|,? I{2,3}$")
_TITLES = frozenset(
    "Officer Deputy Detective Sergeant Sgt Trooper Judge Attorney Rev Pastor Coach".split()
)


def people(full: str) -> frozenset[str]:
    """Each person the text names with an age, as "first last|age" in lower case."""
    found = set()
    for m in _AGE_AFTER.finditer(full):
        name = _NAME_BEFORE.search(full, max(0, m.start() - 60), m.start())
        if name:
            found.add(_person(name.group(1), m.group(1)))
    for m in _YEAR_OLD.finditer(full):
        age = _AGE_BACK.search(full, max(0, m.start() - 3), m.start())
        name = _NAME_AFTER.match(full[m.end():m.end() + 60]) if age else None
        if age and name:
            found.add(_person(name.group(1), age.group(1)))
    return frozenset(p for p in found if p)


def _person(name: str, age: str) -> str:
    # Titles, days and months are not names ("President Joe Biden", "On Sunday"); middle
    # names and initials vary between outlets, first and last name do not.
    words = [w for w in re.split(r"[ -]", _SUFFIX.sub("", name))
             if len(w) > 2 and w not in NOT_NAMES and w not in _TITLES]
    if len(words) < 2:
        return ""
    return f"{words[0].lower()} {words[-1].lower()}|{int(age)}"
