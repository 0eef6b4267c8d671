"""Words and shingles: how a text is cut before it is hashed or compared."""

from __future__ import annotations

import re

# Words for shingling: runs of letters/digits (apostrophes inside words kept), case-folded.
# Punctuation and whitespace differences between outlets' copies of a page then do not count.
_WORD = re.compile(r"\w+(?:['’]\w+)*")

SHINGLE_SIZE = 5  # words per shingle, as in the plain datasketch baseline (word 5-shingles)

# Below 5 words a text has no 5-word shingle, so it has no copy signature, and two such
# texts have nothing to be compared on. The shortest real article in ECB+ dev has 7 words
# ("The parliament election is over in Turkmenistan."), so 5 leaves every real one in.
MIN_WORDS = 5


def titled(text: str, title: str = "") -> str:
    """What an event fingerprint reads of an article: its title, if any, then its text. The
    flow reads people from new documents the same way (dedupe.window.people_named)."""
    return f"{title}\n{text}" if title else text


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def is_too_short(text: str) -> bool:
    return len(words(text)) < MIN_WORDS


def shingles(tokens: list[str], size: int = SHINGLE_SIZE) -> list[str]:
    """Distinct word shingles, space-joined (the form the plain datasketch script hashes)."""
    if len(tokens) < size:
        return [" ".join(tokens)] if tokens else []
    return list({" ".join(tokens[i : i + size]) for i in range(len(tokens) - size + 1)})
