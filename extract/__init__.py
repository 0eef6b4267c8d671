"""Fetch and clean: sources -> FetchedPage -> Article. Knows nothing of Prefect or DuckDB.

A page's path from discovery to extraction is three calls, each a stream of typed records:

    with Fetcher(policy) as fetcher:                        # fetch.py: the run's limits
        targets, failures = discover(source, fetcher)       # sources.py: Source -> Targets
        pages = iter_fetch(targets, fetcher, validators)    # fetch.py: -> FetchedPages
        articles = iter_clean_pages(pages)                  # pool.py: -> Articles

Under `iter_fetch`, `Fetcher.fetch` does one URL: the guard (guard.py), robots.txt (robots.py)
and the host's slot (policy.py) for each redirect hop, the request on httpcore's pool (http.py),
the body decoded within its cap (body.py); local files and WARC records are read by local.py.
Under `iter_clean_pages`, `clean_page` (clean.py) turns one page into an Article.
"""
