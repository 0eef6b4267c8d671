"""Prefect flows, settings and the CLI: the only package that wires the others together.

    pipeline.py     the flow: start the run, run an executor, load, dedupe, finish
    tasks.py        every Prefect task and its retry policy (thin wrappers of library calls)
    feed.py         the bounded page feed from the fetch tasks to the one extraction pool
    executors/      where discovery, fetching and extraction run: local.py, dask.py
    config.py       settings (newsdedup.toml); cli.py and commands/ the `newsdedup` CLI
    reporting.py    Prefect artifacts and events; scaleout.py Dask and Redis plumbing
    server.py       a local Prefect server; sampleserver.py the bundled sample over HTTP
"""
