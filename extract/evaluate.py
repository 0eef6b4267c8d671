"""Extraction quality against labelled pages: bag-of-words F1, title and date accuracy.

Two layouts are understood, so that any set laid out the same way (a held-back one included)
scores with the same command:

- gold layout (scrapinghub's article-extraction-benchmark): `html/<id>.html.gz` (or `.html`) and
  `ground-truth.json` = {id: {"articleBody": ..., "url": ..., optional "headline"/"title",
  "datePublished"}};
- readability layout (Mozilla's test pages): `<case>/source.html`, `<case>/expected.html`,
  `<case>/expected-metadata.json` with `title` and `publishedTime` where known.
"""

from __future__ import annotations

import gzip
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from extract.records import Article

_TOKEN = re.compile(r"\w+")
_TITLE_SEPARATOR = re.compile(r"\s+[|\-–—·•:»/\\]\s+|\s*[|_]\s*|\s*\[[^\]]*\]\s*$")

# One page to score: an id, its HTML bytes, the URL it was served from (or None).
Page = tuple[str, bytes, str | None]
# Extract many pages, results in input order.
ExtractMany = Callable[[Sequence[Page]], list[Article]]


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens, as the scrapinghub benchmark's `\\w+` tokenizer."""
    return _TOKEN.findall(unicodedata.normalize("NFKC", text).lower())


def bow_f1(gold: str, predicted: str) -> float:
    """F1 of the multisets of tokens: how much of the gold text was found, how much else came."""
    gold_bag, pred_bag = Counter(tokens(gold)), Counter(tokens(predicted))
    if not gold_bag and not pred_bag:
        return 1.0
    overlap = sum((gold_bag & pred_bag).values())
    if overlap == 0:
        return 0.0
    precision = overlap / sum(pred_bag.values())
    recall = overlap / sum(gold_bag.values())
    return 2 * precision * recall / (precision + recall)


def _title_key(title: str) -> str:
    return " ".join(tokens(title))


def _title_variants(title: str) -> set[str]:
    """The title, and the title with one leading or trailing separated segment removed."""
    variants = {_title_key(title)}
    parts = [p for p in _TITLE_SEPARATOR.split(title) if p and p.strip()]
    if len(parts) >= 2:
        variants.add(_title_key(" ".join(parts[:-1])))
        variants.add(_title_key(" ".join(parts[1:])))
    return {v for v in variants if v}


def title_matches(predicted: str | None, gold: str, strict: bool = False) -> bool:
    """Same headline. Strict: equal after case, punctuation and space normalisation. Otherwise a
    site-name affix on either side is forgiven ("Mozilla - Wikipedia" is "Mozilla"): gold sets
    disagree among themselves on keeping it, and it is not part of the headline."""
    if not predicted:
        return False
    if strict:
        return _title_key(predicted) == _title_key(gold)
    pred, want = _title_variants(predicted), _title_variants(gold)
    return _title_key(predicted) in want or _title_key(gold) in pred


def date_matches(predicted: datetime | None, gold: str) -> bool:
    """Same calendar day: the gold's day as written, or its day in UTC (what we store)."""
    if predicted is None:
        return False
    day = predicted.astimezone(UTC).date().isoformat()
    if gold[:10] == day:
        return True
    try:
        parsed = datetime.fromisoformat(gold.strip().replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        return False
    if parsed.tzinfo is None:
        return False
    return parsed.astimezone(UTC).date().isoformat() == day


@dataclass
class SetScore:
    """Scores for one evaluation set; None where the set gives no gold for that measure."""

    name: str
    pages: int = 0
    f1: float | None = None  # title + text
    f1_text: float | None = None  # text alone
    titles: int = 0
    titles_right: int = 0
    titles_right_strict: int = 0
    dates: int = 0
    dates_right: int = 0
    statuses: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        parts = [f"{self.name}: {self.pages} pages"]
        if self.f1 is not None and self.f1_text is not None:
            parts.append(f"BoW F1 title+text {self.f1:.4f} (text {self.f1_text:.4f})")
        if self.titles:
            parts.append(
                f"title {self.titles_right}/{self.titles} = {self.titles_right / self.titles:.1%}"
                f" (strict {self.titles_right_strict / self.titles:.1%})"
            )
        if self.dates:
            parts.append(f"date {self.dates_right}/{self.dates} = "
                         f"{self.dates_right / self.dates:.1%}")
        bad = {k: v for k, v in sorted(self.statuses.items()) if k != "ok"}
        if bad:
            parts.append("not ok " + ", ".join(f"{k} {v}" for k, v in bad.items()))
        return "; ".join(parts)


def _read(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.endswith(".gz") else data


def _html_text(html: bytes) -> str:
    import lxml.html

    return str(lxml.html.fromstring(html.decode("utf-8", "replace")).text_content())


def is_gold_set(path: Path) -> bool:
    return (path / "ground-truth.json").is_file() and (path / "html").is_dir()


def is_readability_set(path: Path) -> bool:
    return path.is_dir() and any((case / "source.html").is_file() for case in path.iterdir())


def find_sets(data: Path) -> Iterator[Path]:
    """Every evaluation set under `data` (or `data` itself), in name order."""
    if is_gold_set(data) or is_readability_set(data):
        yield data
        return
    for child in sorted(p for p in data.iterdir() if p.is_dir()):
        if is_gold_set(child) or is_readability_set(child):
            yield child


def _article_title_text(article: Article) -> str:
    return f"{article.title or ''}\n{article.text}"


def score_gold_set(path: Path, extract_many: ExtractMany) -> SetScore:
    gold = json.loads((path / "ground-truth.json").read_text(encoding="utf-8"))
    pages: list[Page] = []
    for page_id in sorted(gold):
        for suffix in (".html.gz", ".html", ".htm"):
            file = path / "html" / f"{page_id}{suffix}"
            if file.is_file():
                pages.append((page_id, _read(file), gold[page_id].get("url")))
                break
    articles = extract_many(pages)
    score = SetScore(path.name, pages=len(pages))
    f1s, f1s_text = [], []
    for (page_id, _, _), article in zip(pages, articles, strict=True):
        truth = gold[page_id]
        score.statuses[str(article.status)] += 1
        body = truth.get("articleBody") or ""
        f1s.append(bow_f1(body, _article_title_text(article)))
        f1s_text.append(bow_f1(body, article.text))
        title = truth.get("headline") or truth.get("title")
        if title:
            score.titles += 1
            score.titles_right += title_matches(article.title, title)
            score.titles_right_strict += title_matches(article.title, title, strict=True)
        date = truth.get("datePublished")
        if date:
            score.dates += 1
            score.dates_right += date_matches(article.published_at, date)
    if f1s:
        score.f1, score.f1_text = sum(f1s) / len(f1s), sum(f1s_text) / len(f1s_text)
    return score


def score_readability_set(path: Path, extract_many: ExtractMany) -> SetScore:
    cases = sorted(c for c in path.iterdir() if (c / "source.html").is_file())
    pages: list[Page] = [(c.name, (c / "source.html").read_bytes(), None) for c in cases]
    articles = extract_many(pages)
    score = SetScore(path.name, pages=len(pages))
    f1s, f1s_text = [], []
    for case, article in zip(cases, articles, strict=True):
        score.statuses[str(article.status)] += 1
        if (case / "expected.html").is_file():
            expected = _html_text((case / "expected.html").read_bytes())
            f1s.append(bow_f1(expected, _article_title_text(article)))
            f1s_text.append(bow_f1(expected, article.text))
        meta_file = case / "expected-metadata.json"
        meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.is_file() else {}
        if meta.get("title"):
            score.titles += 1
            score.titles_right += title_matches(article.title, meta["title"])
            score.titles_right_strict += title_matches(article.title, meta["title"], strict=True)
        if meta.get("publishedTime"):
            score.dates += 1
            score.dates_right += date_matches(article.published_at, meta["publishedTime"])
    if f1s:
        score.f1, score.f1_text = sum(f1s) / len(f1s), sum(f1s_text) / len(f1s_text)
    return score


def score_set(path: Path, extract_many: ExtractMany) -> SetScore:
    if is_gold_set(path):
        return score_gold_set(path, extract_many)
    return score_readability_set(path, extract_many)
