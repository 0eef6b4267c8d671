"""Sources that gave nothing, and what to do about each: what `newsdedup run` prints, so that a
user need not look in the `failures` view to learn that a feed 404s or a loopback address needs
`allow_private_networks` (issue #21, item 9). Plain functions of FetchedPage records."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from extract.records import FetchedPage, Reason

# Outcomes of a fetch that are not failures (the warehouse's `failures` view agrees).
NOT_FAILURES = frozenset({Reason.OK, Reason.NOT_MODIFIED, Reason.DEFERRED})

# The fix for each reason a whole source can fail for, in the words of the settings file.
FIXES: dict[Reason, str] = {
    Reason.BLOCKED_ADDRESS: "the address is loopback, private or link-local; if you trust it,"
    " set [fetch] allow_private_networks = true",
    Reason.BAD_SCHEME: "give an http:// or https:// URL (or a local path for directory, warc,"
    " url_file)",
    Reason.BAD_URL: "check the source's location: a URL with http:// or https://, or a path"
    " that exists (relative paths start at the settings file's folder)",
    Reason.HTTP_ERROR: "the server answered with an error: open the URL in a browser and"
    " correct it in the settings file",
    Reason.CONNECT_ERROR: "check the host name and that this machine can reach it; the next run"
    " tries again",
    Reason.TIMEOUT: "the server was too slow: try again later, or raise [fetch] total_timeout_s",
    Reason.TOO_LARGE: "raise [fetch] max_document_bytes (feeds, sitemaps) or max_bytes (pages)",
    Reason.ROBOTS: "the site's robots.txt forbids it; drop the source, or set [fetch]"
    " respect_robots = false if you have the site's leave",
    Reason.BAD_FEED: "the document is not RSS or Atom: check the URL, or use sitemap = or"
    " urls = for this source",
    Reason.NOT_HTML: "the URLs are not HTML pages: list article pages, not files",
    Reason.TOO_MANY_REDIRECTS: "open the URL in a browser and use the address it ends at",
    Reason.DECODE_ERROR: "the document is damaged (bad gzip or encoding): check it by hand",
    Reason.EMPTY: "the server sent nothing: check the URL",
}


@dataclass(frozen=True)
class SourceFailure:
    """A source none of whose URLs worked: its first failure stands for the rest."""

    source: str
    url: str
    reason: str
    detail: str
    n_failed: int
    fix: str


def fix_for(reason: Reason | str, detail: str = "") -> str:
    if "no such file" in detail.lower() or "no directory" in detail.lower():
        return "no file or directory there: correct the path (relative paths start at the" \
            " settings file's folder)"
    try:
        return FIXES.get(Reason(reason), "see the detail; `newsdedup query \"SELECT * FROM"
                         " failures\"` lists every failed URL")
    except ValueError:
        return ""


def failed_sources(names: Sequence[str], pages: Iterable[FetchedPage]) -> list[SourceFailure]:
    """Each source (in `names` order) that had outcomes and no good one."""
    outcomes: dict[str, list[FetchedPage]] = {name: [] for name in names}
    for page in pages:
        outcomes.setdefault(page.source, []).append(page)
    failed = []
    for name in names:
        got = outcomes[name]
        if got and all(p.status not in NOT_FAILURES for p in got):
            first = got[0]
            failed.append(SourceFailure(
                source=name, url=first.url, reason=str(first.status), detail=first.detail,
                n_failed=len(got), fix=fix_for(first.status, first.detail),
            ))
    return failed


def describe(failures: Sequence[SourceFailure], n_sources: int) -> list[str]:
    """Lines for a run's summary: each failed source's URL, reason, detail and fix."""
    if not failures:
        return []
    head = ("every source failed" if len(failures) == n_sources
            else f"{len(failures)} of {n_sources} sources failed")
    lines = [f"  {head}:"]
    for f in failures:
        more = f" (and {f.n_failed - 1} more)" if f.n_failed > 1 else ""
        lines += [f"  - {f.source}: {f.reason} {f.url}{more}",
                  f"      {f.detail}" if f.detail else "",
                  f"      fix: {f.fix}"]
    return [line for line in lines if line]
