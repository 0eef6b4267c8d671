"""A news corpus with known copy groups, for bench_cluster.py.

    .venv/bin/python bench/make_corpus.py --n 20000 --out corpus.jsonl

Real article texts (ECB+ dev, the seeds, the scrapinghub gold article bodies, from ../shared)
are the originals; more originals are made by splicing paragraphs of several real articles
(distinct texts of realistic length and vocabulary). Each original then gets a few copies as
other outlets would publish them: inside their page chrome (header and footer boilerplate),
with a few words edited, a paragraph dropped or the end cut, different spacing and case.
Each line: id, text, title, url, published_at, copy_group (gold: the original's id).
Deterministic for a given --seed.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"

CHROME = [
    ("Home | News | World | Politics | Business | Tech | Sport | Opinion | Video",
     "Share this article. Related stories. Most read. Sign up for our daily newsletter. "
     "Copyright {y} The Daily Record. All rights reserved. Privacy | Terms | Cookies"),
    ("Skip to main content. Menu. Search. Subscribe now and get unlimited access for just "
     "one dollar a week. Log in", "Advertisement. Comments are closed. Follow us on social "
     "media. More from this section. Trending now. Back to top."),
    ("BREAKING NEWS ALERTS. Download our app for the latest headlines and push notifications "
     "about the stories that matter to you.", "This material may not be published, broadcast, "
     "rewritten or redistributed. Report a typo. Recommended for you. Sponsored content."),
    ("Metro edition | Weather 21C | Traffic | Jobs | Classifieds | Obituaries | Events",
     "Join the conversation. Read our community guidelines. Editor's picks. Newsletter. "
     "About us. Contact. Careers. Advertise with us. Site map."),
]
_WORD = re.compile(r"\S+")


def real_texts() -> list[str]:
    texts: list[str] = []
    ecb = SHARED / "eval" / "events" / "ecbplus_dev.jsonl"
    texts += [json.loads(line)["text"] for line in ecb.read_text().splitlines() if line.strip()]
    texts += [p.read_text() for p in sorted((SHARED / "seeds").glob("*.txt"))]
    gold = SHARED / "eval" / "extraction" / "scrapinghub_aeb" / "ground-truth.json"
    if gold.is_file():
        data = json.loads(gold.read_text())
        texts += [data[k]["articleBody"] for k in sorted(data)]
    elif (gz := gold.with_suffix(".json.gz")).is_file():
        data = json.loads(gzip.decompress(gz.read_bytes()))
        texts += [data[k]["articleBody"] for k in sorted(data)]
    return [t for t in texts if len(t.split()) >= 40]


def _shingles(text: str) -> set[str]:
    w = re.findall(r"\w+", text.lower())
    return {" ".join(w[i : i + 5]) for i in range(len(w) - 4)}


def _near_duplicates(texts: list[str]) -> dict[int, int]:
    """Real articles that are already copies of each other (ECB+ holds syndicated versions):
    exact word 5-shingle Jaccard >= 0.5 or containment >= 0.8. Returns index -> the group's
    smallest index, so the gold copy groups count them as one."""
    from datasketch import MinHash, MinHashLSH

    sets = [_shingles(t) for t in texts]
    lsh = MinHashLSH(threshold=0.2, num_perm=64)
    parent = list(range(len(texts)))

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for i, sh in enumerate(sets):
        m = MinHash(num_perm=64)
        m.update_batch([s.encode() for s in sh])
        for j in lsh.query(m):
            inter = len(sh & sets[j])
            if inter / len(sh | sets[j]) >= 0.5 or inter / min(len(sh), len(sets[j])) >= 0.8:
                a, b = find(i), find(j)
                parent[max(a, b)] = min(a, b)
        lsh.insert(i, m)
    return {i: find(i) for i in range(len(texts)) if find(i) != i}


def _paragraphs(text: str) -> list[str]:
    paras = [p.strip() for p in text.split("\n") if p.strip()]
    if len(paras) < 3:  # one long block: cut into sentences, three to a paragraph
        sents = re.split(r"(?<=[.!?])\s+", text.strip())
        paras = [" ".join(sents[i : i + 3]) for i in range(0, len(sents), 3)]
    return paras


def _spliced(rng: random.Random, pool: list[list[str]]) -> str:
    parts: list[str] = []
    for source in rng.sample(pool, rng.randint(3, 5)):
        # At most a third of any one source, so that no source is (nearly) contained in the
        # result: containing a whole other article would make it a copy of it.
        take = min(rng.randint(2, 4), max(1, len(source) // 3))
        start = rng.randrange(len(source) - take + 1)
        parts += source[start : start + take]
    return "\n".join(parts)


def _edit_words(rng: random.Random, text: str, share: float) -> str:
    tokens = _WORD.findall(text)
    for _ in range(max(1, int(len(tokens) * share))):
        i = rng.randrange(len(tokens))
        roll = rng.random()
        if roll < 0.4:
            tokens[i] = rng.choice(["the", "a", "reportedly", "also", "now", "said"])
        elif roll < 0.7 and len(tokens) > 10:
            del tokens[i]
        else:
            tokens.insert(i, rng.choice(["however", "meanwhile", "officials", "local"]))
    return " ".join(tokens)


def copy_of(rng: random.Random, text: str) -> str:
    """One outlet's version of `text`."""
    paras = _paragraphs(text)
    if len(paras) > 4 and rng.random() < 0.3:
        paras.pop(rng.randrange(1, len(paras)))  # a paragraph dropped
    if len(paras) > 5 and rng.random() < 0.2:
        paras = paras[: int(len(paras) * rng.uniform(0.75, 0.9))]  # the end cut
    body = "\n".join(paras)
    body = _edit_words(rng, body, rng.uniform(0.002, 0.01))
    head, foot = rng.choice(CHROME)
    if rng.random() < 0.7:
        body = f"{head}\n{body}\n{foot.format(y=rng.randint(2015, 2025))}"
    if rng.random() < 0.3:
        body = body.upper() if rng.random() < 0.1 else re.sub(r"\s+", "  ", body)
    return body


def make_corpus(n: int, seed: int = 13) -> Iterator[dict[str, object]]:
    """n rows: about 45% originals, the rest copies of them (1 to 4 per copied original)."""
    rng = random.Random(seed)
    real = real_texts()
    pool = [p for p in (_paragraphs(t) for t in real) if len(p) >= 6]
    same = _near_duplicates(real)
    base = datetime(2024, 1, 1, tzinfo=UTC)
    made = 0
    k = 0
    while made < n:
        text = real[k] if k < len(real) else _spliced(rng, pool)
        original = f"o{k:06d}"
        group = f"o{same.get(k, k):06d}"
        when = base + timedelta(minutes=rng.randint(0, 60 * 24 * 365))
        rows = [(original, text, when)]
        if rng.random() < 0.6:
            for c in range(rng.randint(1, 4)):
                later = when + timedelta(minutes=rng.randint(1, 60 * 48))
                rows.append((f"{original}-c{c}", copy_of(rng, text), later))
        for doc_id, body, ts in rows[: n - made]:
            yield {
                "id": doc_id,
                "text": body,
                "title": "",
                "url": f"https://outlet{rng.randint(1, 40)}.example/{doc_id}",
                "published_at": ts.isoformat(),
                "copy_group": group,
            }
            made += 1
        k += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    with args.out.open("w", encoding="utf-8") as f:
        for row in make_corpus(args.n, args.seed):
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
