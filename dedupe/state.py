"""The state grouping keeps of each document between runs: its in-memory record (`Doc`, with
the event fingerprint `Profile` of a copy group's head) and the payload it is stored as, read
back by the next run. The warehouse stores a payload as opaque bytes; only this module reads
or writes its fields, and it reads the previous version too (`_upgrade_v2`)."""

from __future__ import annotations

import base64
import hashlib
import heapq
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from dedupe import events as ev
from dedupe.fingerprint import BLOCK_TERMS
from dedupe.minhash import Signer
from dedupe.records import DocState, Document

PAYLOAD_VERSION = 3

class PayloadError(ValueError):
    """A DocState payload that dedupe cannot read (other version or corrupt)."""



@dataclass(frozen=True)
class Profile:
    """The event fingerprint of a copy group's head (other members never need one)."""

    terms: dict[str, float]
    block_signature: np.ndarray
    dates: tuple[str, ...] = ()
    places: tuple[str, ...] = ()
    names: frozenset[str] = frozenset()
    entities: frozenset[str] = frozenset()
    setting: str | None = None
    repeated: frozenset[str] = frozenset()
    people: frozenset[str] = frozenset()
    weekdays: frozenset[int] = frozenset()


@dataclass
class Doc:
    """Everything grouping knows of one document, new or from a prior run, and where it lands."""

    doc_id: str
    key: tuple[str, str]
    signature: np.ndarray
    n_shingles: int
    headline: str
    titled: bool  # the headline is the page's title, not the text's first line
    source: str
    published_at: datetime | None
    date_guessed: bool
    is_new: bool
    document: Document | None = None  # new documents: the text, for fingerprinting
    profile: Profile | None = None
    prior_event: str | None = None
    prior_copy: str | None = None
    prior_piece: str | None = None
    payload: bytes = b""  # prior documents: the payload read, rewritten only when it changed
    copy_id: str | None = None
    event_id: str | None = None
    piece: str | None = None
    rule: str = ""
    similarity: float = 0.0
    matched: str | None = None

    @property
    def real_day(self) -> int | None:
        """The publication day when it is a fact (not guessed), as a day ordinal."""
        if self.published_at is None or self.date_guessed:
            return None
        return self.published_at.date().toordinal()


def utc(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def canonical_key(doc_id: str, published_at: datetime | None) -> tuple[str, str]:
    ts = utc(published_at)
    # "~" sorts after every ISO timestamp: undated documents count as the newest.
    return (ts.isoformat() if ts else "~", doc_id)


def hash_id(prefix: str, doc_id: str) -> str:
    return prefix + hashlib.sha1(doc_id.encode("utf-8")).hexdigest()[:16]



def _b64(array: np.ndarray, dtype: str) -> str:
    return base64.b64encode(array.astype(dtype).tobytes()).decode("ascii")


def encode_state(d: Doc, signer: Signer) -> bytes:
    p = d.profile
    body: dict[str, Any] = {
        "v": PAYLOAD_VERSION,
        "seed": signer.seed,
        "num_perm": signer.num_perm,
        "sig": _b64(d.signature, "<u4"),
        "n_shingles": d.n_shingles,
        "headline": d.headline,
        "titled": d.titled,
        "source": d.source,
        "published_at": d.published_at.isoformat() if d.published_at else None,
        "guessed": d.date_guessed,
        "piece": d.piece,
    }
    if p is not None:
        body |= {
            # Terms as one tab-joined string and their weights as float64 bytes: exact, and
            # several times faster to write and read than a JSON object of floats.
            "terms": "\t".join(p.terms),
            "weights": _b64(np.fromiter(p.terms.values(), np.float64, len(p.terms)), "<f8"),
            "bsig": _b64(p.block_signature, "<u4"),
            "dates": list(p.dates),
            "places": list(p.places),
            "names": sorted(p.names),
            "entities": sorted(p.entities),
            "setting": p.setting,
            "repeated": sorted(p.repeated),
            "people": sorted(p.people),
            "weekdays": sorted(p.weekdays),
        }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


SHORT_PAYLOAD = json.dumps({"v": PAYLOAD_VERSION, "too_short": True}).encode("utf-8")


def decode_state(state: DocState, signer: Signer) -> Doc | None:
    try:
        body = json.loads(state.payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise PayloadError(f"payload of {state.doc_id!r} is not dedupe JSON: {err}") from err
    if body.get("v") == 2 and not body.get("too_short"):
        body = _upgrade_v2(body, state)
    if body.get("v") not in (2, PAYLOAD_VERSION):
        raise PayloadError(
            f"payload of {state.doc_id!r} has version {body.get('v')!r}, expected "
            f"{PAYLOAD_VERSION}: re-run grouping over those documents to rebuild their state"
        )
    if body.get("too_short"):
        return None
    if body["seed"] != signer.seed or body["num_perm"] != signer.num_perm:
        raise PayloadError(
            f"payload of {state.doc_id!r} was signed with seed={body['seed']}, "
            f"num_perm={body['num_perm']}; this run uses seed={signer.seed}, "
            f"num_perm={signer.num_perm}"
        )
    published = datetime.fromisoformat(body["published_at"]) if body["published_at"] else None
    profile = None
    if "terms" in body:
        profile = Profile(
            terms=_terms(body["terms"], body["weights"]),
            block_signature=_array(body["bsig"], "<u4"),
            dates=tuple(body["dates"]),
            places=tuple(body["places"]),
            names=frozenset(body["names"]),
            entities=frozenset(body["entities"]),
            setting=body["setting"],
            repeated=frozenset(body["repeated"]),
            # Written since people and weekdays were read; an older payload has neither.
            people=frozenset(body.get("people", ())),
            weekdays=frozenset(body.get("weekdays", ())),
        )
    return Doc(
        doc_id=state.doc_id,
        key=canonical_key(state.doc_id, published),
        signature=_array(body["sig"], "<u4"),
        n_shingles=int(body["n_shingles"]),
        headline=body["headline"],
        titled=bool(body.get("titled", False)),
        source=body["source"],
        published_at=published,
        date_guessed=bool(body["guessed"]),
        is_new=False,
        profile=profile,
        prior_event=state.event_id,
        prior_copy=state.copy_id,
        prior_piece=body["piece"],
        payload=state.payload,
        copy_id=state.copy_id,
        event_id=state.event_id,
        piece=body["piece"],
    )


def _upgrade_v2(body: dict[str, Any], state: DocState) -> dict[str, Any]:
    """A version-2 payload (written before grouping kept pieces and date sources; it profiled
    every document)
    read as version 3, so a warehouse grouped by an older release goes on without regrouping:
    its events become the pieces, since an event was the unit an older run decided, and its
    name words stand in for the entity words they are a subset of. Its dates count as real:
    the older release did not record where a date came from."""
    terms = _terms(body["terms"], body["weights"])
    return body | {
        "v": PAYLOAD_VERSION,
        "guessed": False,
        "piece": hash_id("k", state.event_id) if state.event_id else None,
        "bsig": _b64(ev.block_signatures([top_terms(terms, BLOCK_TERMS)])[0], "<u4"),
        "entities": body["names"],
    }


def _array(b64: str, dtype: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype=dtype).astype(np.uint32)


def _terms(joined: str, weights: str) -> dict[str, float]:
    if not joined:
        return {}
    values = np.frombuffer(base64.b64decode(weights), dtype=np.float64).tolist()
    return dict(zip(joined.split("\t"), values, strict=True))

def top_terms(terms: dict[str, float], k: int) -> list[str]:
    """The k heaviest terms, ties by name (as sorted(...)[:k] would give)."""
    return heapq.nsmallest(k, terms, key=lambda t: (-terms[t], t))
