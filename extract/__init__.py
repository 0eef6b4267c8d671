"""Fetch and clean: sources -> FetchedPage -> Article. Knows nothing of Prefect or DuckDB."""
