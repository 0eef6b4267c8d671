from __future__ import annotations

from pathlib import Path

import pytest

from extract.records import SourceKind
from flows.config import ConfigError, load_settings, parse_settings

GOOD = {
    "warehouse": {"path": "w.duckdb"},
    "fetch": {"allow_private_networks": True},
    "sources": [
        {"name": "wire", "feed": "https://example.org/rss.xml"},
        {"name": "map", "sitemap": "https://example.org/sitemap.xml"},
        {"name": "list", "urls": ["https://example.org/a", "https://example.org/b"]},
        {"name": "disk", "directory": "pages"},
    ],
    "schedule": {"cron": "0 * * * *"},
}


def test_good_settings_parse(tmp_path: Path) -> None:
    s = parse_settings(GOOD, base=tmp_path)
    assert s.warehouse_path == tmp_path / "w.duckdb"
    assert s.fetch.allow_private_networks is True
    assert [src.kind for src in s.sources] == [
        SourceKind.FEED, SourceKind.SITEMAP, SourceKind.URLS, SourceKind.DIRECTORY
    ]
    assert s.sources[3].locations == (str(tmp_path / "pages"),)
    assert s.cron == "0 * * * *"


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"colour": 1}, "unknown key 'colour'"),
        (
            {"fetch": {"allow_private_network": True}},
            "[fetch]: unknown key 'allow_private_network'",
        ),
        (
            {"fetch": {"allow_private_networks": "yes"}},
            "[fetch].allow_private_networks: expected bool",
        ),
        ({"sources": []}, "add at least one source"),
        ({"sources": [{"name": "x"}]}, "set exactly one of"),
        ({"sources": [{"name": "x", "feed": "a", "urls": ["b"]}]}, "set exactly one of"),
        ({"sources": [{"name": "x", "urls": []}]}, "non-empty list"),
        ({"sources": [{"feed": "a"}]}, "non-empty name"),
        ({"sources": [{"name": "x", "feed": "a"}, {"name": "x", "feed": "b"}]}, "unique"),
        ({"schedule": {"cron": "hourly"}}, "5-field cron"),
        ({"extract": {"workers": 0}}, "[extract].workers"),
        ({"dedupe": {"lsh_storage": "s3"}}, "[dedupe].lsh_storage"),
        # Issue #21, items 7 and 10: accepted once, then a run or `serve` failed far from here.
        ({"schedule": {"cron": "99 99 99 99 99"}}, "minute '99' is outside 0-59"),
        ({"schedule": {"cron": "0 0 * 13 *"}}, "month '13' is outside 1-12"),
        ({"schedule": {"timezone": "Mars/Olympus_Mons"}}, "not an IANA time zone"),
        ({"fetch": {"user_agent": "newsdedup/1 (+https://x.org)\r\nX-Evil: 1"}}, "one line"),
        ({"fetch": {"per_host_delay_s": float("nan")}}, "per_host_delay_s must be >= 0"),
        ({"fetch": {"total_timeout_s": float("inf")}}, "total_timeout_s must be a finite"),
        ({"extract": {"timeout_s": float("nan")}}, "[extract].timeout_s: timeout_s,"),
        ({"extract": {"workers": 1000}}, "[extract].workers: workers must be 1 to"),
        ({"warehouse": {"path": ""}}, "[warehouse].path: is empty"),
    ],
)
def test_bad_settings_name_the_key(patch: dict, message: str) -> None:
    data = {**GOOD, **patch}
    with pytest.raises(ConfigError) as info:
        parse_settings(data)
    assert message in str(info.value)


def test_missing_file_says_how_to_write_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path / "newsdedup.toml")
    assert "[[sources]]" in str(info.value) and "make demo" in str(info.value)


def test_bad_toml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "newsdedup.toml"
    path.write_text("[warehouse\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(path)


def test_a_good_schedule_passes() -> None:
    for cron in ("*/15 6-22 * * MON-FRI", "0 0 1 JAN,JUL *", "30 4 * * 7"):
        assert parse_settings({**GOOD, "schedule": {"cron": cron}}).cron == cron
    settings = parse_settings({**GOOD, "schedule": {"timezone": "Europe/Berlin"}})
    assert settings.timezone == "Europe/Berlin"


def test_a_dask_cluster_may_have_more_workers_than_this_machine() -> None:
    extract = {"executor": "dask", "workers": 1000}
    assert parse_settings({**GOOD, "extract": extract}).extract.workers == 1000


def test_a_file_as_warehouse_names_a_folder(tmp_path: Path) -> None:
    (tmp_path / "old.duckdb").write_bytes(b"")
    with pytest.raises(ConfigError, match="is a file; the warehouse is a folder"):
        parse_settings({**GOOD, "warehouse": {"path": "old.duckdb"}}, base=tmp_path)


def test_a_settings_file_that_is_not_utf8_says_so(tmp_path: Path) -> None:
    path = tmp_path / "newsdedup.toml"
    path.write_bytes(b'[warehouse]\npath = "caf\xe9.duckdb"\n')
    with pytest.raises(ConfigError, match="not UTF-8 text .* save the file as UTF-8"):
        load_settings(path)
    with pytest.raises(ConfigError, match="cannot read the settings file"):
        load_settings(tmp_path)
