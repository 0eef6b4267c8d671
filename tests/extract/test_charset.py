"""Decoding: the byte-order mark, a declaration only when it decodes cleanly, detection."""

from __future__ import annotations

import codecs

import pytest

from extract.body import decode_html, header_charset, meta_charset, normalize_label

FRENCH = (
    "Le ministre a déclaré que la réforme des retraites serait présentée à l'Assemblée "
    "nationale après l'été. Les syndicats, réunis à Paris, ont annoncé une journée de grève "
    "générale. « Nous ne céderons pas », a affirmé leur représentant, très ému. "
) * 4


def page(body: str, head: str = "") -> str:
    return f"<html><head>{head}<title>Réforme</title></head><body><p>{body}</p></body></html>"


@pytest.mark.parametrize(
    ("bom", "codec"),
    [(codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
     (codecs.BOM_UTF16_BE, "utf-16-be")],
)
def test_bom_wins_over_any_declaration(bom: bytes, codec: str) -> None:
    html = page(FRENCH, '<meta charset="iso-8859-1">')
    decoded = decode_html(bom + html.encode(codec), declared="text/html; charset=windows-1252")
    assert decoded.how == "bom"
    assert "déclaré" in decoded.text and not decoded.text.startswith("\ufeff")


def test_honest_header_is_used() -> None:
    body = page(FRENCH).encode("cp1252")
    decoded = decode_html(body, declared="text/html; charset=windows-1252")
    assert (decoded.how, decoded.encoding) == ("header", "cp1252")
    assert "« Nous ne céderons pas »" in decoded.text


def test_latin1_label_means_windows_1252() -> None:
    body = page("Il a dit \u201cnon\u201d. " + FRENCH).encode("cp1252")
    decoded = decode_html(body, declared="ISO-8859-1")
    assert "\u201cnon\u201d" in decoded.text  # cp1252's curly quotes, not C1 controls


def test_single_byte_declaration_in_front_of_utf8_is_not_believed() -> None:
    body = page(FRENCH, '<meta charset="iso-8859-1">').encode("utf-8")
    decoded = decode_html(body, declared="text/html; charset=ISO-8859-1")
    assert decoded.encoding == "utf-8"
    assert "déclaré" in decoded.text and "Ã©" not in decoded.text


def test_utf8_declaration_in_front_of_cp1252_falls_to_detection() -> None:
    body = page(FRENCH, '<meta charset="utf-8">').encode("cp1252")
    decoded = decode_html(body, declared="text/html; charset=utf-8")
    assert decoded.how == "detected"
    assert "déclaré" in decoded.text and "\ufffd" not in decoded.text


def test_meta_declaration_when_no_header() -> None:
    body = page(FRENCH, '<meta http-equiv="Content-Type" content="text/html; charset=cp1252">')
    decoded = decode_html(body.encode("cp1252"))
    assert (decoded.how, decoded.encoding) == ("meta", "cp1252")


def test_undeclared_utf8_and_undeclared_legacy() -> None:
    assert decode_html(page(FRENCH).encode("utf-8")).encoding == "utf-8"
    decoded = decode_html(page(FRENCH).encode("cp1252"))
    assert "réforme" in decoded.text and "\ufffd" not in decoded.text


def test_utf8_with_a_stray_byte_stays_utf8() -> None:
    body = page(FRENCH, '<meta charset="utf-8">').encode("utf-8").replace(b"</p>", b"\x92</p>")
    decoded = decode_html(body)
    assert decoded.encoding == "utf-8"
    assert "déclaré" in decoded.text and decoded.text.count("\ufffd") == 1


def test_unknown_or_utf16_meta_labels() -> None:
    assert normalize_label("x-no-such-charset") is None
    body = page(FRENCH, '<meta charset="utf-16">').encode("utf-8")
    assert decode_html(body).encoding == "utf-8"
    assert decode_html(page(FRENCH, '<meta charset="bogus">').encode("utf-8")).how == "utf-8"


def test_declaration_parsers() -> None:
    assert header_charset('text/html; charset="UTF-8"') == "UTF-8"
    assert header_charset("text/html") is None
    assert meta_charset(b'<meta charset=shift_jis>') == "shift_jis"
    assert meta_charset(b" " * 5000 + b'<meta charset="utf-8">') is None
