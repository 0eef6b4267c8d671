"""What the fetch tests assert on: `iter_fetch`'s pages put back in their targets' order."""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence

import httpx

from extract import guard
from extract.fetch import Fetcher, iter_fetch_indexed
from extract.policy import FetchPolicy
from extract.records import Clock, FetchedPage, Target, Validators, utc_now


def fetch_in_order(
    targets: Sequence[Target],
    policy: FetchPolicy,
    validators: Mapping[str, Validators] | None = None,
    *,
    transport: httpx.BaseTransport | None = None,
    resolver: guard.Resolver = socket.getaddrinfo,
    clock: Clock = utc_now,
    fetcher: Fetcher | None = None,
) -> list[FetchedPage]:
    """One page per target, in input order, through `fetcher` or a Fetcher of its own."""
    if fetcher is not None:
        return _in_order(targets, fetcher, validators or {})
    with Fetcher(policy, transport=transport, resolver=resolver, clock=clock) as own:
        return _in_order(targets, own, validators or {})


def _in_order(
    targets: Sequence[Target], fetcher: Fetcher, validators: Mapping[str, Validators]
) -> list[FetchedPage]:
    return [page for _, page in sorted(iter_fetch_indexed(targets, fetcher, validators),
                                       key=lambda item: item[0])]
