"""Benchmark pages: N article pages made from real texts, wrapped in varied site chrome, listed
in a sitemap and an RSS feed per site, served on 127.0.0.1.

    with serve(directory) as base_url:
        site = build(directory, n, base_url)      # writes the pages, sitemaps and feeds

Texts (../shared, read-only): the 772 ECB+ dev articles, the 181 scrapinghub gold bodies and the
five seeds, 958 in all. The first 958 pages carry them as they are; beyond that a page is either
a syndicated copy of one of them (30%: new headline, a dateline, a paragraph dropped, as wire
copies are) or a new story made of paragraphs of three texts (70%), so that 10,000 pages are not
ten copies of 958 and the dedupe stage does the work a real crawl gives it (~1 page in 4 a copy
of another; GDELT-scale crawls see 20-40% duplicates).

Chrome: six page templates after common publishing systems (WordPress, a big newsroom CMS with
JSON-LD and ad slots, an old table layout, a lean HTML5/AMP-like page, a magazine with a cookie
wall and author box, a wire service), with navigation and mega-menus, share bars with inline
icons, card grids of other stories, related links, comments, link columns in the footer and
inline scripts and styles. What a page costs to extract is set by its markup: these pages are
made to have the element counts of real news pages, and they still cost a little less to
extract than real ones. `python -m bench.pages` measures both against the 181 real news pages
of ../shared/eval/extraction/scrapinghub_aeb, side by side in one process.
"""

from __future__ import annotations

import asyncio
import gzip
import html
import json
import random
import re
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from urllib.parse import unquote

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"
T0 = datetime(2025, 1, 6, 6, 0, tzinfo=UTC)
COPY_SHARE = 0.3  # of the pages beyond the first pass over the texts


@dataclass(frozen=True)
class Text:
    title: str
    paragraphs: tuple[str, ...]


@dataclass(frozen=True)
class Story:
    index: int
    site: int
    title: str
    paragraphs: tuple[str, ...]
    author: str
    published: datetime
    kind: str  # "original", "copy" or "mix"

    @property
    def slug(self) -> str:
        words = re.findall(r"[a-z0-9]+", self.title.lower())[:8]
        return "-".join(words or ["story"]) + f"-{self.index}"

    def path(self, site_slug: str) -> str:
        return f"{site_slug}/{self.published:%Y/%m/%d}/{self.slug}.html"


@dataclass(frozen=True)
class Site:
    slug: str
    name: str
    template: str


SITES = (
    Site("harbor-herald", "The Harbor Herald", "wordpress"),
    Site("capital-courier", "The Capital Courier", "newsroom"),
    Site("valley-gazette", "Valley Gazette", "legacy"),
    Site("metro-now", "Metro Now", "lean"),
    Site("eastgate-review", "The Eastgate Review", "magazine"),
    Site("pacific-wire", "Pacific Wire", "wire"),
    Site("lakeside-ledger", "Lakeside Ledger", "newsroom"),
    Site("northern-standard", "Northern Standard", "wordpress"),
)

FIRST = ("Anna", "Ben", "Carla", "David", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jon",
         "Kemi", "Luis", "Maya", "Nils", "Olga", "Pedro", "Rosa", "Sam", "Tara", "Yusuf")
LAST = ("Adams", "Brooks", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Hayes", "Ito",
        "Jensen", "Khan", "Lopez", "Moreau", "Novak", "Okafor", "Park", "Rossi", "Singh")
SECTIONS = ("World", "Politics", "Business", "Markets", "Tech", "Science", "Health", "Sport",
            "Culture", "Opinion", "Climate", "Local", "Travel", "Weather", "Video", "Podcasts")


# --- Texts ---------------------------------------------------------------------------------


def _split(text: str) -> tuple[str, tuple[str, ...]]:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if len(lines) > 1 and len(lines[0]) <= 160:
        return lines[0], tuple(lines[1:])
    return " ".join(text.split()[:10]), tuple(lines)


def load_texts(shared: Path = SHARED) -> list[Text]:
    """Every real text under `shared`; raises FileNotFoundError when the folder is absent."""
    texts: list[Text] = []
    with open(shared / "eval" / "events" / "ecbplus_dev.jsonl", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            title, paragraphs = _split(row["text"])
            texts.append(Text(row.get("title") or title, paragraphs))
    gold = json.loads(
        (shared / "eval" / "extraction" / "scrapinghub_aeb" / "ground-truth.json").read_text()
    )
    for key in sorted(gold):
        body = gold[key]["articleBody"]
        url_words = gold[key].get("url", "").rstrip("/").rsplit("/", 1)[-1]
        title = " ".join(re.findall(r"[A-Za-z]+", url_words)[:10]).capitalize() or body[:60]
        texts.append(Text(title, tuple(p.strip() for p in body.splitlines() if p.strip())))
    for path in sorted((shared / "seeds").glob("*.txt")):
        title, paragraphs = _split(path.read_text(encoding="utf-8"))
        texts.append(Text(title, paragraphs))
    return [t for t in texts if t.paragraphs]


def make_stories(texts: list[Text], n: int, seed: int = 7) -> list[Story]:
    """N stories, deterministic for a given seed; the first len(texts) are the texts as they are."""
    rng = random.Random(seed)
    stories: list[Story] = []
    for i in range(n):
        base = texts[i % len(texts)]
        site = rng.randrange(len(SITES))
        author = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        published = T0 + timedelta(minutes=7 * i)
        paragraphs: list[str]
        if i < len(texts):
            title, paragraphs, kind = base.title, list(base.paragraphs), "original"
        elif rng.random() < COPY_SHARE:
            paragraphs = list(base.paragraphs)
            if len(paragraphs) > 3:
                del paragraphs[rng.randrange(1, len(paragraphs))]
            city = rng.choice(("TOKYO", "LONDON", "NEW YORK", "PARIS", "DELHI"))
            dateline = f"{city} ({SITES[site].name}) - "
            paragraphs[0] = dateline + paragraphs[0]
            prefix = rng.choice(("", "UPDATE: ", "Analysis: ", "Watch: ", ""))
            title, kind = prefix + base.title, "copy"
        else:
            donors = [base] + rng.sample(texts, 2)
            paragraphs = []
            for donor in donors:
                k = min(len(donor.paragraphs), rng.randint(2, 5))
                start = rng.randrange(len(donor.paragraphs) - k + 1)
                paragraphs.extend(donor.paragraphs[start:start + k])
            title, kind = f"{base.title} ({rng.choice(SECTIONS)} edition)", "mix"
        stories.append(Story(i, site, title, tuple(paragraphs), author, published, kind))
    return stories


# --- Chrome --------------------------------------------------------------------------------


def _pool(kind: str) -> str:
    """256 KiB of minified-looking script or style text, made once per kind: slicing it is
    ~100x faster than drawing every page's scripts from the RNG (23 s -> 2 s for 1,000 pages)."""
    if kind not in _POOLS:
        rng = random.Random(kind)
        parts: list[str] = []
        total = 0
        while total < 256 * 1024:
            name = "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(3, 9)))
            if kind == "js":
                piece = (f"function {name}(e,t){{var n=e&&e.{name}||[];for(var r=0;r<n.length;"
                         f"r++){{t.push(n[r]*{rng.randint(2, 97)})}}return t}};"
                         f"window.{name}={name};")
            else:
                piece = (f".{name}{{margin:{rng.randint(0, 24)}px {rng.randint(0, 24)}px;"
                         f"color:#{rng.randrange(16**6):06x};font-size:{rng.randint(10, 32)}px}}")
            parts.append(piece)
            total += len(piece)
        _POOLS[kind] = "".join(parts)
    return _POOLS[kind]


_POOLS: dict[str, str] = {}


def _blob(rng: random.Random, kind: str, size: int) -> str:
    """Script or style text of `size` characters from a random place in the pool."""
    pool = _pool(kind)
    start = rng.randrange(len(pool) - size)
    return pool[start:start + size]


def _links(rng: random.Random, site: Site, n: int, cls: str = "") -> str:
    items = []
    for _ in range(n):
        section = rng.choice(SECTIONS)
        items.append(f'<li{cls}><a href="/{site.slug}/{section.lower()}/">{section}</a></li>')
    return "".join(items)


def _related(related: list[Story], site: Site) -> str:
    return "".join(
        f'<li><a href="/{r.path(site.slug)}">{html.escape(r.title)}</a>'
        f'<span class="meta">{r.published:%b %d}</span></li>'
        for r in related
    )


def _comments(rng: random.Random, related: list[Story]) -> str:
    out = []
    for r in related[: rng.randint(2, 6)]:
        said = html.escape(rng.choice(r.paragraphs)[:300])
        who = f"{rng.choice(FIRST).lower()}{rng.randint(1, 99)}"
        out.append(f'<li class="comment"><div class="comment-author">{who}</div>'
                   f'<div class="comment-body"><p>{said}</p></div>'
                   f'<a class="reply" href="#respond">Reply</a></li>')
    return "".join(out)


# What makes real news pages costly to extract is their markup, not their bytes: a mega-menu,
# card grids of other stories (image, kicker, headline, summary, time), share bars with inline
# icons, link columns in the footer, all in nested wrappers. The 181 real news pages of
# ../shared/eval/extraction/scrapinghub_aeb have 486 / 785 / 1,014 elements (quartiles) and
# 31% of their bytes in scripts and styles; pages with this file's first templates alone had
# 252 / 342 / 389 and 82%, and took 18-20 ms of CPU to extract (median) against 43-49 ms for
# the real pages measured beside them: a benchmark on them weighed everything but extraction
# ~2.5x too heavily. The blocks below bring the pages to the real ones' element counts and
# extraction cost (`python -m bench.pages`).
_ICON = ('<svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><path d="M{a} {b}l{c} '
         '{d}-{e} {a}z"></path><path d="M{b} {a}h{c}v{d}"></path></svg>')
_SUBSECTIONS = ("Europe", "Asia", "Africa", "Americas", "Middle East", "Economy", "Companies",
                "Elections", "Energy", "Transport", "Education", "Courts", "Space", "AI",
                "Football", "Tennis", "Film", "Books", "Music", "Food", "Property", "Explainers")


def _icon(rng: random.Random) -> str:
    a, b, c, d, e = (rng.randint(1, 23) for _ in range(5))
    return _ICON.format(a=a, b=b, c=c, d=d, e=e)


def _mega_menu(rng: random.Random, site: Site) -> str:
    """Sections, each with a drop-down of sub-sections: 100-260 elements."""
    out = []
    for section in rng.sample(SECTIONS, rng.randint(6, 12)):
        subs = "".join(
            f'<li class="menu__sub-item"><a class="menu__sub-link" href="/{site.slug}/'
            f'{section.lower()}/{sub.lower().replace(" ", "-")}/">{sub}</a></li>'
            for sub in rng.sample(_SUBSECTIONS, rng.randint(4, 10))
        )
        out.append(f'<li class="menu__item menu__item--has-children"><a class="menu__link" '
                   f'href="/{site.slug}/{section.lower()}/">{section}</a><button class="menu__'
                   f'toggle" aria-expanded="false">{_icon(rng)}</button><div class="menu__panel">'
                   f'<ul class="menu__sub">{subs}</ul></div></li>')
    return (f'<div class="menu-wrap"><div class="menu-inner"><ul class="menu menu--mega">'
            f'{"".join(out)}</ul></div><form class="search" action="/{site.slug}/search">'
            f'<label for="q">Search</label><input id="q" name="q" type="search"><button>'
            f'{_icon(rng)}</button></form></div>')


def _cards(rng: random.Random, site: Site, related: list[Story], heading: str, n: int,
           kind: str) -> str:
    """A grid of `n` story cards, as "More from" and "Most read" blocks draw them; `kind` is
    the class such blocks carry on real sites ("related-stories", "most-popular")."""
    if not related:
        return ""
    cards = []
    for k in range(n):
        r = related[(k + rng.randrange(len(related))) % len(related)]
        summary = html.escape(r.paragraphs[0][: rng.randint(90, 180)])
        cards.append(
            f'<li class="card-grid__item"><article class="card '
            f'card--{rng.choice(("s", "m", "l"))}">'
            f'<a class="card__link" href="/{r.path(site.slug)}"><div class="card__media"><picture>'
            f'<source srcset="/img/{r.index}-w640.webp 640w, /img/{r.index}-w320.webp 320w" '
            f'type="image/webp"><img class="card__img" src="/img/{r.index}.jpg" alt="" '
            f'loading="lazy"></picture></div><div class="card__body"><span class="card__kicker">'
            f'{rng.choice(SECTIONS)}</span><h3 class="card__title">{html.escape(r.title)}</h3>'
            f'<p class="card__summary">{summary}</p></div></a><div class="card__meta"><time '
            f'datetime="{r.published.isoformat()}">{r.published:%b %d}</time></div></article></li>'
        )
    module = heading.lower().replace(" ", "-")
    return (f'<section class="{kind} card-grid" data-module="{module}"><div '
            f'class="card-grid__inner"><h2 class="card-grid__heading">{heading}</h2><ul '
            f'class="card-grid__list">{"".join(cards)}</ul></div></section>')


def _share(rng: random.Random) -> str:
    buttons = "".join(
        f'<li class="share__item"><a class="share__link share__link--{name.lower()}" href="#" '
        f'aria-label="Share on {name}">{_icon(rng)}<span class="share__label">{name}</span>'
        f'</a></li>'
        for name in ("Facebook", "X", "LinkedIn", "WhatsApp", "Email", "Copy link")
    )
    return f'<div class="share"><ul class="share__list">{buttons}</ul></div>'


def _footer_columns(rng: random.Random, site: Site) -> str:
    columns = []
    for heading in rng.sample(("News", "Sections", "Opinion", "Services", "Company", "Follow us",
                               "Legal", "Newsletters"), rng.randint(3, 6)):
        links = "".join(
            f'<li class="footer__item"><a class="footer__link" href="/{site.slug}/'
            f'{section.lower()}/">{section}</a></li>'
            for section in rng.sample(SECTIONS + _SUBSECTIONS, rng.randint(6, 14))
        )
        columns.append(f'<div class="footer__col"><h4 class="footer__heading">{heading}</h4>'
                       f'<ul class="footer__list">{links}</ul></div>')
    social = "".join(f'<a class="social__link" href="#">{_icon(rng)}</a>' for _ in range(5))
    return (f'<div class="footer__columns">{"".join(columns)}</div><div class="social">{social}'
            f'</div><p class="footer__legal">Terms &middot; Privacy &middot; Cookie settings '
            f'&middot; Accessibility</p>')


def _extras(rng: random.Random, site: Site, related: list[Story]) -> dict[str, str]:
    """The heavier blocks a template places: menu, share bar, two card grids, footer."""
    return {
        "menu": _mega_menu(rng, site),
        "share": _share(rng),
        "more": _cards(rng, site, related, f"More from {site.name}", rng.randint(4, 14),
                       "related-stories"),
        "popular": _cards(rng, site, related, "Most read", rng.randint(3, 12), "most-popular"),
        "footer": _footer_columns(rng, site),
    }


def _head(story: Story, site: Site, base_url: str, rng: random.Random, jsonld: bool) -> str:
    url = f"{base_url}/{story.path(site.slug)}"
    title = html.escape(story.title)
    desc = html.escape(story.paragraphs[0][:200])
    ld = ""
    if jsonld:
        ld = ('<script type="application/ld+json">' + json.dumps({
            "@context": "https://schema.org", "@type": "NewsArticle", "headline": story.title,
            "datePublished": story.published.isoformat(), "author": {"@type": "Person",
            "name": story.author}, "publisher": {"@type": "Organization", "name": site.name},
            "mainEntityOfPage": url}) + "</script>")
    return (
        f'<head><meta charset="utf-8"><title>{title} | {site.name}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="description" content="{desc}">'
        f'<meta property="og:title" content="{title}"><meta property="og:site_name" '
        f'content="{site.name}"><meta property="og:type" content="article">'
        f'<meta property="article:published_time" content="{story.published.isoformat()}">'
        f'<meta name="author" content="{html.escape(story.author)}">'
        f'<link rel="canonical" href="{url}">{ld}'
        f"<style>{_blob(rng, 'css', rng.randint(4_000, 12_000))}</style>"
        f"<script>{_blob(rng, 'js', rng.randint(8_000, 25_000))}</script></head>"
    )


def _paragraphs(story: Story, rng: random.Random, ads: bool) -> str:
    out = []
    for k, p in enumerate(story.paragraphs):
        out.append(f"<p>{html.escape(p)}</p>")
        if ads and k % 4 == 3:
            out.append(f'<div class="ad-slot" id="ad-{k}"><script>{_blob(rng, "js", 600)}'
                       "</script><span>Advertisement</span></div>")
    return "".join(out)


def render(story: Story, related: list[Story], base_url: str) -> str:
    """One article page in its site's template."""
    site = SITES[story.site]
    rng = random.Random(story.index * 7919 + 17)
    head = _head(story, site, base_url, rng, jsonld=site.template in {"newsroom", "magazine"})
    title = html.escape(story.title)
    when = story.published
    byline = html.escape(story.author)
    nav = _links(rng, site, rng.randint(25, 70))
    footer = _links(rng, site, rng.randint(20, 50))
    rel = _related(related, site)
    tail = f"<script>{_blob(rng, 'js', rng.randint(4_000, 16_000))}</script>"
    x = _extras(rng, site, related)
    t = site.template
    if t == "wordpress":
        body = (
            f'<body class="post-template-default single"><header id="masthead">'
            f'<div class="site-title"><a href="/{site.slug}/">{site.name}</a></div>'
            f'<nav id="site-navigation"><ul class="menu">{nav}</ul>{x["menu"]}</nav></header>'
            f'<div id="content"><main id="main"><article class="post">'
            f'<header class="entry-header"><h1 class="entry-title">{title}</h1>'
            f'<div class="entry-meta"><span class="byline">By <a href="/{site.slug}/author/">'
            f'{byline}</a></span> <time class="entry-date" datetime="{when.isoformat()}">'
            f"{when:%B %d, %Y}</time></div></header>"
            f'<div class="entry-content">{_paragraphs(story, rng, ads=False)}</div>'
            f'<footer class="entry-footer">{x["share"]}</footer></article>{x["more"]}'
            f'<section class="related-posts"><h3>Related posts</h3><ul>{rel}</ul></section>'
            f'<div id="comments"><h2>Comments</h2><ol class="comment-list">'
            f"{_comments(rng, related)}"
            f'</ol><div id="respond"><form><textarea name="comment"></textarea><button>Post Comment'
            f'</button></form></div></div></main><aside id="secondary"><section class="widget">'
            f'<h2>Recent Posts</h2><ul>{rel}</ul></section><section class="widget"><h2>Tags</h2>'
            f'<ul>{_links(rng, site, 30)}</ul></section>{x["popular"]}</aside></div>'
            f'<footer id="colophon">{x["footer"]}<ul>'
            f"{footer}</ul><p>&copy; {when:%Y} {site.name}. Proudly powered by WordPress</p>"
            f"</footer>"
            f"{tail}</body>"
        )
    elif t == "newsroom":
        body = (
            f'<body><div id="cookie-banner">We use cookies to improve your experience. '
            f'<button>Accept all</button><button>Manage</button></div><header class="site-header">'
            f'<div class="logo">{site.name}</div><nav class="mega-menu"><ul>{nav}'
            f"{_links(rng, site, 40)}"
            f'</ul>{x["menu"]}</nav></header><div class="breadcrumb"><a href="/">Home</a> &rsaquo; '
            f'<a href="/{site.slug}/world/">World</a></div><main><div class="article-wrapper">'
            f'<h1 class="headline">{title}</h1><div class="byline-block"><span class="author">By '
            f'{byline}</span><span class="timestamp">Published {when:%d %B %Y %H:%M} GMT'
            f'</span></div>{x["share"]}'
            f'<div class="article-body" itemprop="articleBody">{_paragraphs(story, rng, ads=True)}'
            f'</div><div class="newsletter"><h4>Sign up for the morning briefing</h4><form>'
            f'<input type="email" placeholder="Email"><button>Sign up</button></form></div></div>'
            f'<aside class="trending"><h3>Trending</h3><ol>{rel}</ol></aside>'
            f'<section class="more-stories"><h3>More stories</h3><ul>{rel}</ul></section>'
            f'{x["more"]}{x["popular"]}</main>'
            f'<footer class="site-footer">{x["footer"]}<ul>{footer}</ul><p>&copy; {site.name} '
            f'Media Group</p>'
            f"</footer>{tail}</body>"
        )
    elif t == "legacy":
        paras = "<br><br>".join(html.escape(p) for p in story.paragraphs)
        left = "".join(f"<tr><td>{x}</td></tr>" for x in nav.split("</li>"))
        body = (
            f'<body bgcolor="#ffffff"><table width="100%" border="0"><tr><td colspan="2">'
            f'<font size="6"><b>{site.name}</b></font></td></tr><tr><td width="180" valign="top">'
            f'<table class="leftnav">{left}'
            f'</table></td><td valign="top"><font size="5"><b>{title}</b></font><br>'
            f'<font size="2">{byline} - {when:%m/%d/%Y}</font><br><br><font face="Arial">{paras}'
            f'</font><br><br><b>See also:</b><ul>{rel}</ul></td></tr><tr><td colspan="2">'
            f'<font size="1">{footer}</font></td></tr></table>{x["popular"]}{x["footer"]}'
            f'{tail}</body>'
        )
    elif t == "lean":
        body = (
            f'<body><header><a class="brand" href="/{site.slug}/">{site.name}</a><nav><ul>{nav}'
            f'</ul></nav></header><main><article><h1>{title}</h1><p class="dek">'
            f'{html.escape(story.paragraphs[0][:160])}</p><address>{byline}</address>'
            f'<time datetime="{when.isoformat()}">{when:%b %d, %Y}</time><figure>'
            f'<img src="/img/{story.index}.jpg" alt="Photo"><figcaption>Photo: {site.name} / '
            f'{byline}</figcaption></figure>{_paragraphs(story, rng, ads=False)}{x["share"]}'
            f'</article><aside><h2>Read next</h2><ul>{rel}</ul></aside>{x["more"]}</main>'
            f'<footer><ul>{footer}</ul>'
            f"</footer>{tail}</body>"
        )
    elif t == "magazine":
        body = (
            f'<body><div class="c-consent-modal"><p>Your privacy choices. We and our 812 partners '
            f'store and access information on your device.</p><button>I agree</button></div>'
            f'<div class="c-global-header"><div class="c-logo">{site.name}</div><ul class="c-nav">'
            f'{nav}</ul>{x["menu"]}</div><div class="l-wrapper"><div class="c-entry-hero">'
            f'<h1 class="c-page-title">'
            f'{title}</h1><div class="c-byline">By <span class="c-byline__author">{byline}</span> '
            f'<time>{when:%b %d, %Y, %I:%M%p} UTC</time></div>{x["share"]}</div>'
            f'<div class="c-entry-content">'
            f'{_paragraphs(story, rng, ads=True)}</div><div class="c-author-bio"><p>{byline} is a '
            f"senior writer at {site.name}. Follow on social media.</p></div>"
            f'<div class="c-most-read"><h2>Most read</h2><ol>{rel}</ol></div>'
            f'<div class="c-comments">{_comments(rng, related)}'
            f'</div>{x["more"]}{x["popular"]}</div><footer class="c-footer">{x["footer"]}<ul>'
            f'{footer}</ul></footer>{tail}</body>'
        )
    else:  # wire
        body = (
            f'<body><div class="wire-top"><b>{site.name}</b> | <a href="/{site.slug}/">Latest</a>'
            f'</div><div class="story"><h2 class="story-title">{title}</h2><div class="story-date">'
            f'{when:%Y-%m-%d %H:%M} UTC | {byline}</div><div class="story-text">'
            f'{_paragraphs(story, rng, ads=False)}</div></div><div class="more"><h3>More from '
            f'{site.name}</h3><ul>{rel}{rel}</ul></div>{x["more"]}<div class="footer">{footer}'
            f'{x["footer"]}</div>'
            f"{tail}</body>"
        )
    return f'<!DOCTYPE html><html lang="en">{head}{body}</html>'


# --- Site ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuiltSite:
    """What build() wrote: the page files (for extraction-only runs) and one source per site."""

    directory: Path
    base_url: str
    pages: tuple[Path, ...]
    sources: tuple[tuple[str, str, str], ...]  # (name, "feed" or "sitemap", URL)
    n_bytes: int
    kinds: dict[str, int]


def _sitemap(urls: list[tuple[str, datetime]]) -> str:
    rows = "".join(f"<url><loc>{html.escape(u)}</loc><lastmod>{d.isoformat()}</lastmod></url>"
                   for u, d in urls)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/'
            f'schemas/sitemap/0.9">{rows}</urlset>\n')


def _feed(site: Site, base_url: str, items: list[tuple[str, Story]]) -> str:
    rows = "".join(
        f"<item><title>{html.escape(s.title)}</title><link>{html.escape(u)}</link>"
        f'<guid isPermaLink="true">{html.escape(u)}</guid>'
        f"<pubDate>{s.published:%a, %d %b %Y %H:%M:%S +0000}</pubDate>"
        f"<description>{html.escape(s.paragraphs[0][:200])}</description></item>"
        for u, s in items
    )
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
            f"<title>{site.name}</title><link>{base_url}/{site.slug}/</link>"
            f"<description>Latest from {site.name}</description>{rows}</channel></rss>\n")


def build(directory: Path, n: int, base_url: str, texts: list[Text] | None = None,
          seed: int = 7, stories: list[Story] | None = None) -> BuiltSite:
    """Write N pages under `directory`, and per site a sitemap.xml and a feed.xml listing them.
    Even-numbered sites are configured as sitemaps, odd ones as feeds, so both paths run.
    `stories`: these pages instead of make_stories' first N (bench_history's run)."""
    if stories is None:
        texts = texts if texts is not None else load_texts()
        stories = make_stories(texts, n, seed)
    by_site: dict[int, list[Story]] = {i: [] for i in range(len(SITES))}
    for s in stories:
        by_site[s.site].append(s)
    paths: list[Path] = []
    n_bytes = 0
    position = {s.index: k for site_stories in by_site.values() for k, s in enumerate(site_stories)}
    for story in stories:
        # Related links: the same site's neighbouring stories, as "more from" boxes show.
        same = by_site[story.site]
        k = position[story.index]
        rel = [same[j] for j in range(max(0, k - 5), min(len(same), k + 6)) if j != k]
        data = render(story, rel, base_url).encode("utf-8")
        path = directory / story.path(SITES[story.site].slug)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        paths.append(path)
        n_bytes += len(data)
    sources = []
    for i, site in enumerate(SITES):
        items = [(f"{base_url}/{s.path(site.slug)}", s) for s in by_site[i]]
        if not items:
            continue
        (directory / site.slug).mkdir(parents=True, exist_ok=True)
        (directory / site.slug / "sitemap.xml").write_text(
            _sitemap([(u, s.published) for u, s in items]), encoding="utf-8")
        (directory / site.slug / "feed.xml").write_text(_feed(site, base_url, items),
                                                        encoding="utf-8")
        kind = "sitemap" if i % 2 == 0 else "feed"
        sources.append((site.slug, kind, f"{base_url}/{site.slug}/{kind}.xml"))
    kinds: dict[str, int] = {}
    for s in stories:
        kinds[s.kind] = kinds.get(s.kind, 0) + 1
    return BuiltSite(directory, base_url, tuple(paths), tuple(sources), n_bytes, kinds)


# --- Server --------------------------------------------------------------------------------


# The server runs on this machine but stands for servers elsewhere, whose CPU a crawl does not
# pay: it is kept lean so that it takes as little as possible from the run it serves. Files are
# read per request (the page cache holds them) and answered with a minimal HTTP/1.1 head, with
# keep-alive, as real servers do. http.server's SimpleHTTPRequestHandler took 0.43 ms of CPU a
# page (4.3 s of the 10,000-page run's two cores); this one 0.15-0.2 ms.
_TYPES = {".html": b"text/html; charset=utf-8", ".xml": b"application/xml"}
_NOT_FOUND = (b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n"
              b"\r\nnot found")


def _answer(root: Path, target: bytes) -> bytes:
    path = unquote(target.split(b"?", 1)[0].decode("utf-8", "replace"))
    file = (root / path.lstrip("/")).resolve()
    if not file.is_relative_to(root) or not file.is_file():
        return _NOT_FOUND
    body = file.read_bytes()
    kind = _TYPES.get(file.suffix, b"application/octet-stream")
    return (b"HTTP/1.1 200 OK\r\nContent-Type: " + kind + b"\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body)


async def _connection(root: Path, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            method, target = head.split(b" ", 2)[:2]
            answer = _answer(root, target)
            writer.write(answer if method != b"HEAD" else answer.partition(b"\r\n\r\n")[0]
                         + b"\r\n\r\n")
            await writer.drain()
            if b"connection: close" in head.lower():
                break
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
        pass  # the client closed the connection, or sent something that is not a request
    finally:
        writer.close()


@contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve `directory` on 127.0.0.1 (a free port) from a thread; yields the base URL."""
    root = directory.resolve()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    port: list[int] = []

    async def main() -> None:
        server = await asyncio.start_server(partial(_connection, root), "127.0.0.1", 0,
                                            backlog=256)
        port.append(server.sockets[0].getsockname()[1])
        started.set()
        async with server:
            await server.serve_forever()

    def run() -> None:
        try:
            loop.run_until_complete(main())
        except asyncio.CancelledError:
            pass

    thread = threading.Thread(target=run, name="bench-pages", daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield f"http://127.0.0.1:{port[0]}"
    finally:

        def stop() -> None:
            for task in asyncio.all_tasks(loop):
                task.cancel()

        loop.call_soon_threadsafe(stop)
        thread.join(10)
        if not thread.is_alive():
            loop.close()


# --- Calibration ---------------------------------------------------------------------------


def _quartiles(values: list[float]) -> list[int]:
    return [round(q) for q in statistics.quantiles(values, n=4)]


def _shape(bodies: list[bytes]) -> dict[str, object]:
    """Element-count and size quartiles: fixed for a set of pages, so measured once."""
    import lxml.html

    elements = [float(sum(1 for _ in lxml.html.fromstring(b).iter())) for b in bodies]
    return {"pages": len(bodies), "elements": _quartiles(elements),
            "kib": [round(q / 1024) for q in _quartiles([float(len(b)) for b in bodies])]}


def _extraction_cpu(bodies: list[bytes]) -> dict[str, float]:
    """CPU ms per page of `extract.clean.clean_page`, served as the benchmark serves pages."""
    from extract.clean import clean_page
    from extract.records import FetchedPage, Reason

    cpu = []
    for i, body in enumerate(bodies):
        url = f"http://calibration.test/{i}.html"
        page = FetchedPage(url=url, final_url=url, source="calibration", status=Reason.OK,
                           fetched_at=datetime.now(UTC), body=body,
                           content_type="text/html; charset=utf-8")
        start = time.process_time()
        clean_page(page)
        cpu.append(1000 * (time.process_time() - start))
    return {"cpu_ms_mean": round(statistics.fmean(cpu), 1),
            "cpu_ms_median": round(statistics.median(cpu), 1)}


def calibrate(n: int = 300, rounds: int = 2) -> None:
    """Print the generated pages' element counts, sizes and extraction CPU beside the real
    news pages' (../shared/eval/extraction/scrapinghub_aeb), alternating the two sets `rounds`
    times: this VM's speed drifts, so only figures taken side by side compare."""
    real_dir = SHARED / "eval" / "extraction" / "scrapinghub_aeb" / "html"
    real = [gzip.decompress(p.read_bytes()) for p in sorted(real_dir.glob("*.html.gz"))]
    with tempfile.TemporaryDirectory(prefix="newsdedup-pages-") as tmp:
        site = build(Path(tmp), n, "http://127.0.0.1:1")
        ours = [p.read_bytes() for p in site.pages]
    sets = {"generated": ours, "real (scrapinghub)": real}
    shapes = {name: _shape(bodies) for name, bodies in sets.items()}
    for _ in range(rounds):
        for name, bodies in sets.items():
            print(f"{name:20s} {shapes[name] | _extraction_cpu(bodies)}", flush=True)


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    calibrate(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
