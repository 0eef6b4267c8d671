"""Scale-out switches: extraction as batch tasks on a Dask LocalCluster through prefect-dask, and
the LSH index in a real Redis (Debian's redis-server on a free loopback port)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import dedupe
from dedupe.records import Document
from extract.clean import clean_html
from extract.fetch import Fetcher
from extract.policy import FetchPolicy
from extract.pool import clean_pages
from extract.records import Reason, Source, SourceKind
from extract.sources import discover
from flows import scaleout
from flows.config import DedupeSettings, ExtractSettings, Settings
from flows.executors import dask as dask_executor
from flows.sampleserver import SAMPLE_DIR
from tests.flows.prefectserver import PrefectServer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("redis-server") or (
        "/usr/sbin/redis-server" if Path("/usr/sbin/redis-server").exists() else None
    )
    if binary is None:
        reason = "redis-server is not installed (Debian: apt-get install -y redis-server)"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    pytest.importorskip("redis", reason="the redis client: pip install -e '.[redis]'")
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.exceptions.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail(f"redis-server did not answer on 127.0.0.1:{port}")
            time.sleep(0.1)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        proc.terminate()
        proc.wait(10)


def _sample_documents() -> list[Document]:
    docs = []
    for path in sorted(SAMPLE_DIR.glob("*.html")):
        article = clean_html(path.read_bytes(), url=f"http://127.0.0.1/{path.name}")
        docs.append(Document(
            doc_id=article.article_id, text=article.text, title=article.title or "",
            url=article.url, source=path.name.split("-")[0], published_at=article.published_at,
        ))
    return docs


def test_grouping_with_the_lsh_in_redis_equals_in_memory(redis_url: str) -> None:
    import redis

    docs = _sample_documents()
    storage = scaleout.redis_storage_config(
        DedupeSettings(lsh_storage="redis", redis_url=redis_url), "newsdedup:test"
    )
    assert storage is not None
    # First half, then the rest against the first half's states: the incremental path too.
    half = len(docs) // 2
    in_memory = dedupe.group(docs[:half])
    in_redis = dedupe.group(docs[:half], storage_config=storage)
    assert in_redis == in_memory
    client = redis.Redis(**storage["redis"])
    keys = list(client.scan_iter(match=b"newsdedup:test*"))
    assert any(k.startswith(b"newsdedup:test:copies") for k in keys)
    assert any(k.startswith(b"newsdedup:test:events") for k in keys)
    assert scaleout.drop_redis_keys(storage) == len(keys)
    assert client.dbsize() == 0

    rest_memory = dedupe.group(docs[half:], in_memory.states)
    rest_redis = dedupe.group(docs[half:], in_memory.states, storage_config=storage)
    assert rest_redis == rest_memory
    scaleout.drop_redis_keys(storage)
    client.close()


@pytest.mark.slow
def test_extraction_runs_as_batch_tasks_on_a_dask_local_cluster(
    prefect_server: PrefectServer,
    sample_site: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("prefect_dask", reason="prefect-dask: pip install -e '.[dask]'")
    from prefect import flow
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect_dask import DaskTaskRunner

    # processes=False: the workers are threads of this process (no worker start-up to pay in a
    # test); extract_batch then runs its one-process pool from that thread.
    monkeypatch.setattr(scaleout, "BATCH_PAGES", 4)
    monkeypatch.setattr(
        scaleout, "dask_task_runner",
        lambda settings: DaskTaskRunner(cluster_kwargs={
            "n_workers": 2, "threads_per_worker": 1, "processes": False,
            "dashboard_address": None,
        }),
    )
    policy = FetchPolicy(allow_private_networks=True, per_host_delay_s=0.0)
    with Fetcher(policy) as fetcher:
        targets, failures = discover(
            Source("sample", SourceKind.FEED, (f"{sample_site}/feed.xml",)), fetcher
        )
    assert targets and not failures
    from tests.extract.fetching import fetch_in_order

    pages = fetch_in_order(targets, policy)
    settings = Settings(
        warehouse_path=tmp_path / "w.duckdb", sources=(), fetch=policy,
        extract=ExtractSettings(executor="dask", timeout_s=30.0),
    )

    @flow(name="newsdedup-test-dask")
    def on_dask() -> tuple[str, list]:
        from prefect.runtime import flow_run

        return flow_run.id, dask_executor.extract_on_dask(settings, pages)

    with temporary_settings({PREFECT_API_URL: prefect_server.api}):
        run_id, articles = on_dask()
    assert [a.url for a in articles] == [p.url for p in pages]  # input order kept
    # Every page fetched extracts; the sample's one missing page (a 404) fails as it should.
    assert [a.status is Reason.OK for a in articles] == [p.status is Reason.OK for p in pages]
    assert sum(p.status is Reason.OK for p in pages) == len(pages) - 1
    local = {a.url: a.content_hash for a in clean_pages(pages, workers=1)}
    assert {a.url: a.content_hash for a in articles} == local
    names = {t["name"] for t in prefect_server.task_runs(run_id)}
    n_batches = -(-len(pages) // 4)
    assert names == {f"extract-batch-{i}" for i in range(n_batches)}
