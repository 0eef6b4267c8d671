"""Settings: the TOML file a user writes, validated into frozen records with messages that name
the key and the fix. Only flows/ reads settings; the libraries get plain values."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from extract.policy import FetchPolicy
from extract.records import Source, SourceKind
from extract.workers import check_pool

DEFAULT_CONFIG = Path("newsdedup.toml")

EXAMPLE = """\
[warehouse]
path = "newsdedup.duckdb"

[fetch]
allow_private_networks = false   # loopback/private/link-local refused unless true

[[sources]]
name = "example"
feed = "https://example.org/rss.xml"   # or sitemap = "...", urls = [...], directory = "..."

[schedule]
cron = "0 * * * *"
"""


class ConfigError(ValueError):
    """A settings file that cannot be used; the message names the key and the fix."""


@dataclass(frozen=True)
class ExtractSettings:
    workers: int | None = None  # None: one worker process per core
    timeout_s: float = 30.0
    executor: str = "local"  # "local" process pool, or "dask"
    dask_address: str | None = None  # None with executor="dask": a LocalCluster


@dataclass(frozen=True)
class DedupeSettings:
    lsh_storage: str = "memory"  # "memory" or "redis"
    redis_url: str = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class Settings:
    warehouse_path: Path
    sources: tuple[Source, ...]
    fetch: FetchPolicy
    extract: ExtractSettings = field(default_factory=ExtractSettings)
    dedupe: DedupeSettings = field(default_factory=DedupeSettings)
    cron: str | None = None
    timezone: str = "UTC"
    config_path: Path | None = None


_SOURCE_KINDS = {
    "feed": SourceKind.FEED,
    "sitemap": SourceKind.SITEMAP,
    "urls": SourceKind.URLS,
    "url_file": SourceKind.URLS,
    "directory": SourceKind.DIRECTORY,
    "warc": SourceKind.WARC,
}

# Every FetchPolicy field is a [fetch] key of the same name and type; FetchPolicy validates
# the values and its messages say how to fix them.
_FETCH_KEYS: dict[str, type] = {
    f.name: {"bool": bool, "int": int, "float": float, "str": str}[str(f.type)]
    for f in fields(FetchPolicy)
}


# What each cron field allows (Prefect's croniter would say so only when `serve` builds the
# schedule, in a traceback; importing it here would import Prefect before a run's settings are
# even read). Names for months and week days, as cron(5) has them.
_CRON_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT",
                      "NOV", "DEC")),
    ("day of week", 0, 7, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")),
)


def _cron_number(text: str, field: str, low: int, high: int, names: tuple[str, ...]) -> int:
    if text.upper() in names:
        return names.index(text.upper()) + (1 if field == "month" else 0)
    if not text.isdigit() or not low <= int(text) <= high:
        raise ValueError(text)
    return int(text)


def cron_problem(cron: str) -> str:
    """What is wrong with a 5-field cron expression, or "" when nothing is."""
    parts = cron.split()
    if len(parts) != 5:
        return f"{len(parts)} fields"
    for part, (field_name, low, high, names) in zip(parts, _CRON_FIELDS, strict=True):
        for item in part.split(","):
            span, _, step = item.partition("/")
            try:
                if step and (not step.isdigit() or int(step) < 1):
                    raise ValueError(step)
                if span != "*":
                    first, _, last = span.partition("-")
                    end = _cron_number(last, field_name, low, high, names) if last else high
                    if _cron_number(first, field_name, low, high, names) > end:
                        raise ValueError(span)
            except ValueError:
                return f"{field_name} {item!r} is outside {low}-{high}"
    return ""


def _check_keys(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r}; allowed keys are {', '.join(sorted(allowed))}"
        )


def _typed(value: Any, kind: type, where: str) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is not bool and isinstance(value, bool) or not isinstance(value, kind):
        raise ConfigError(f"{where}: expected {kind.__name__}, got {value!r}")
    return value


def _source(raw: Any, index: int, base: Path) -> Source:
    where = f"[[sources]] #{index + 1}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a table with name and one of {sorted(_SOURCE_KINDS)}")
    _check_keys(raw, {"name", *_SOURCE_KINDS}, where)
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}.name: give each source a non-empty name, e.g. name = \"wire\"")
    where = f"[[sources]] {name!r}"
    kinds = [k for k in _SOURCE_KINDS if k in raw]
    if len(kinds) != 1:
        raise ConfigError(
            f"{where}: set exactly one of feed, sitemap, urls, url_file, directory, warc "
            f"(found {kinds or 'none'})"
        )
    key = kinds[0]
    value = raw[key]
    if key == "urls":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}.urls: expected a non-empty list of URL strings")
        locations = tuple(value)
    else:
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where}.{key}: expected a string")
        locations = (value,)
    if key in {"directory", "warc", "url_file"}:
        path = Path(value).expanduser()
        locations = (str(path if path.is_absolute() else (base / path)),)
    return Source(name=name, kind=_SOURCE_KINDS[key], locations=locations)


def parse_settings(
    data: dict[str, Any], base: Path = Path("."), path: Path | None = None
) -> Settings:
    """Validate a parsed TOML document. Relative paths are taken relative to `base`."""
    top_level = {"warehouse", "fetch", "sources", "schedule", "extract", "dedupe"}
    _check_keys(data, top_level, "top level")

    warehouse = data.get("warehouse", {})
    _check_keys(warehouse, {"path"}, "[warehouse]")
    wtext = _typed(warehouse.get("path", "newsdedup.duckdb"), str, "[warehouse].path")
    if not wtext.strip():
        raise ConfigError('[warehouse].path: is empty; name a file, e.g. path = "newsdedup.duckdb"')
    wpath = Path(wtext).expanduser()
    if not wpath.is_absolute():
        wpath = base / wpath
    if wpath.is_dir():
        raise ConfigError(
            f"[warehouse].path: {wpath} is a directory; name a file in it, e.g."
            f" path = \"{Path(wtext) / 'newsdedup.duckdb'}\""
        )

    fetch_raw = data.get("fetch", {})
    _check_keys(fetch_raw, set(_FETCH_KEYS), "[fetch]")
    fetch_args = {k: _typed(v, _FETCH_KEYS[k], f"[fetch].{k}") for k, v in fetch_raw.items()}
    try:
        policy = FetchPolicy(**fetch_args)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[fetch]: {exc}") from exc

    raw_sources = data.get("sources")
    if not isinstance(raw_sources, list) or not raw_sources:
        raise ConfigError(
            "[[sources]]: add at least one source, e.g.\n\n"
            '[[sources]]\nname = "example"\nfeed = "https://example.org/rss.xml"'
        )
    sources = tuple(_source(raw, i, base) for i, raw in enumerate(raw_sources))
    names = [s.name for s in sources]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"[[sources]]: source names must be unique; {dupes[0]!r} appears twice")

    extract_raw = data.get("extract", {})
    _check_keys(extract_raw, {"workers", "timeout_s", "executor", "dask_address"}, "[extract]")
    workers = extract_raw.get("workers")
    if workers is not None and _typed(workers, int, "[extract].workers") < 1:
        raise ConfigError("[extract].workers: must be at least 1 (or leave it out: one per core)")
    timeout_s = _typed(extract_raw.get("timeout_s", 30.0), float, "[extract].timeout_s")
    executor = _typed(extract_raw.get("executor", "local"), str, "[extract].executor")
    if executor not in {"local", "dask"}:
        raise ConfigError('[extract].executor: use "local" (process pool) or "dask"')
    try:  # a Dask cluster's workers are on other machines: this one's cores do not bound them
        check_pool(workers if executor == "local" else None, timeout_s)
    except ValueError as exc:
        key = "workers" if "workers" in str(exc) else "timeout_s"
        raise ConfigError(f"[extract].{key}: {exc}") from None
    dask_address = extract_raw.get("dask_address")
    if dask_address is not None:
        _typed(dask_address, str, "[extract].dask_address")

    dedupe_raw = data.get("dedupe", {})
    _check_keys(dedupe_raw, {"lsh_storage", "redis_url"}, "[dedupe]")
    lsh_storage = _typed(dedupe_raw.get("lsh_storage", "memory"), str, "[dedupe].lsh_storage")
    if lsh_storage not in {"memory", "redis"}:
        raise ConfigError('[dedupe].lsh_storage: use "memory" or "redis"')
    redis_url = _typed(
        dedupe_raw.get("redis_url", DedupeSettings.redis_url), str, "[dedupe].redis_url"
    )

    schedule = data.get("schedule", {})
    _check_keys(schedule, {"cron", "timezone"}, "[schedule]")
    cron = schedule.get("cron")
    if cron is not None:
        cron = _typed(cron, str, "[schedule].cron")
        problem = cron_problem(cron)
        if problem:
            raise ConfigError(
                f"[schedule].cron: {cron!r} is not a 5-field cron expression ({problem}); e.g."
                ' "0 * * * *" (hourly) or "*/15 6-22 * * MON-FRI"'
            )
    timezone = _typed(schedule.get("timezone", "UTC"), str, "[schedule].timezone")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"[schedule].timezone: {timezone!r} is not an IANA time zone; e.g."
            ' "UTC", "Europe/Berlin", "America/New_York"'
        ) from None

    return Settings(
        warehouse_path=wpath,
        sources=sources,
        fetch=policy,
        extract=ExtractSettings(
            workers=workers, timeout_s=timeout_s, executor=executor, dask_address=dask_address
        ),
        dedupe=DedupeSettings(lsh_storage=lsh_storage, redis_url=redis_url),
        cron=cron,
        timezone=timezone,
        config_path=path,
    )


def load_settings(path: Path | None = None) -> Settings:
    """Read and validate a settings file (default ./newsdedup.toml)."""
    path = path or DEFAULT_CONFIG
    if not path.exists():
        raise ConfigError(
            f"no settings file at {path}. Write one like this (or run `make demo` to try the "
            f"bundled sample):\n\n{EXAMPLE}"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.object[exc.start:exc.end]!r} at offset"
            f" {exc.start}); save the file as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the settings file: {exc.strerror or exc}") from None
    return parse_settings(data, base=path.resolve().parent, path=path.resolve())
