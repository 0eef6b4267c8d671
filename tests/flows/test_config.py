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
