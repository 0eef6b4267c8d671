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
path = "newsdedup.lake"

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
    # An event stays open (its members' state takes part in grouping) while it has a member
    # within open_days of a run's earliest new article. 30 days: follow-ups of a story come
    # within days to weeks (GVA dev: the baseline links reports at most 7 days apart), and a
    # month's window costs a run what a month of articles costs, never what the history costs.
    open_days: float = 30.0


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
    # How far back time travel reaches: maintenance expires older lake snapshots and deletes
    # the files only they used. 7 days: a week of "as of run X" queries, and old versions of
    # rewritten rows cost a week of changes on disk, not the history's.
    keep_days: float = 7.0


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
    _check_keys(warehouse, {"path", "keep_days"}, "[warehouse]")
    keep_days = warehouse.get("keep_days", Settings.keep_days)
    if isinstance(keep_days, bool) or not isinstance(keep_days, int | float) or keep_days < 0:
        raise ConfigError(
            f"[warehouse].keep_days: {keep_days!r} is not a number of days >= 0; how long"
            " earlier runs stay readable (time travel), e.g. keep_days = 7"
        )
    wtext = _typed(warehouse.get("path", "newsdedup.lake"), str, "[warehouse].path")
    if not wtext.strip():
        raise ConfigError('[warehouse].path: is empty; name a folder, e.g. path = "newsdedup.lake"')
    wpath = Path(wtext).expanduser()
    if not wpath.is_absolute():
        wpath = base / wpath
    if wpath.is_file():
        # The warehouse is a folder (a DuckLake: catalog.sqlite and data/), not one file.
        raise ConfigError(
            f"[warehouse].path: {wpath} is a file; the warehouse is a folder that newsdedup"
            f" creates, e.g. path = \"{Path(wtext).with_suffix('.lake')}\""
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
    _check_keys(dedupe_raw, {"lsh_storage", "redis_url", "open_days"}, "[dedupe]")
    lsh_storage = _typed(dedupe_raw.get("lsh_storage", "memory"), str, "[dedupe].lsh_storage")
    if lsh_storage not in {"memory", "redis"}:
        raise ConfigError('[dedupe].lsh_storage: use "memory" or "redis"')
    redis_url = _typed(
        dedupe_raw.get("redis_url", DedupeSettings.redis_url), str, "[dedupe].redis_url"
    )

    open_days = dedupe_raw.get("open_days", DedupeSettings.open_days)
    if isinstance(open_days, bool) or not isinstance(open_days, int | float) or not (
        0 < open_days <= 3650
    ):
        raise ConfigError(
            f"[dedupe].open_days: {open_days!r} is not a number of days between 0 and 3650;"
            " how long an event takes new articles after its latest one, e.g. open_days = 30"
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
        dedupe=DedupeSettings(
            lsh_storage=lsh_storage, redis_url=redis_url, open_days=float(open_days)
        ),
        cron=cron,
        timezone=timezone,
        config_path=path,
        keep_days=float(keep_days),
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
