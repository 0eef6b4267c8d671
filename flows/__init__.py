"""Prefect flows, settings and the CLI: the only package that wires the others together."""
