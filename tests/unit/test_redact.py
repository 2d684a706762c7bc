"""PII redaction: generated valid values are found, generated near-misses are left alone.

The oracles are independent of the code under test: card numbers are built by appending the
Luhn check digit computed here, IBANs by computing ISO 7064 mod-97-10 check digits here, and
near-misses by changing exactly one character (which both checks always detect).
"""

from __future__ import annotations

import base64
import string

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from inferwatch.config import load_config
from inferwatch.record import DeadLetter, InferenceRecord, encode_body
from inferwatch.redact import IBAN_LENGTHS, Redactor, iban_valid

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# words around a planted value: letters and punctuation, never digits (which would extend a number)
filler = st.text(alphabet=string.ascii_lowercase + " ,;:!?()", max_size=30).map(lambda s: f" {s} ")


def luhn_digit(payload: str) -> str:
    """The check digit that makes ``payload + digit`` pass Luhn (computed independently)."""
    total = 0
    for i, ch in enumerate(reversed(payload)):
        d = int(ch)
        if i % 2 == 0:  # these get doubled once the check digit is appended
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


@st.composite
def cards(draw: st.DrawFn) -> str:
    n = draw(st.integers(13, 19))
    payload = str(draw(st.integers(1, 9))) + "".join(draw(st.lists(st.sampled_from("0123456789"),
                                                                     min_size=n - 2, max_size=n - 2)))
    return payload + luhn_digit(payload)


def group(digits: str, sep: str, size: int) -> str:
    return sep.join(digits[i:i + size] for i in range(0, len(digits), size)) if sep else digits


def one_digit_off(digits: str, pos: int, delta: int) -> str:
    i = pos % len(digits)
    return digits[:i] + str((int(digits[i]) + delta) % 10) + digits[i + 1:]


def iban_check(country: str, bban: str) -> str:
    moved = bban + country + "00"
    n = int("".join(str(int(c, 36)) for c in moved))
    return f"{country}{98 - n % 97:02d}{bban}"


@st.composite
def ibans(draw: st.DrawFn) -> str:
    country = draw(st.sampled_from(sorted(IBAN_LENGTHS)))
    n = IBAN_LENGTHS[country] - 4
    bban = "".join(draw(st.lists(st.sampled_from(string.digits + string.ascii_uppercase), min_size=n, max_size=n)))
    return iban_check(country, bban)


CARD = Redactor(patterns=["card"])
IBAN = Redactor(patterns=["iban"])
ALL = Redactor(patterns=["email", "card", "phone", "iban"])


@SETTINGS
@given(cards(), st.sampled_from(["", " ", "-"]), st.sampled_from([4, 5, 6]), filler, filler)
def test_valid_card_numbers_are_found_in_text(card: str, sep: str, size: int, before: str, after: str) -> None:
    shown = group(card, sep, size)
    out = CARD.text(before + shown + after)
    assert out == before + "[REDACTED:card]" + after


@SETTINGS
@given(cards(), st.integers(0, 18), st.integers(1, 9), st.sampled_from(["", " ", "-"]), filler, filler)
def test_card_near_misses_are_not_masked(card: str, pos: int, delta: int, sep: str, before: str, after: str) -> None:
    wrong = one_digit_off(card, pos, delta)  # a single changed digit always breaks Luhn
    text = before + group(wrong, sep, 4) + after
    assert CARD.text(text) == text


@SETTINGS
@given(cards())
def test_card_numbers_as_json_integers(card: str) -> None:
    body = orjson.dumps({"amount": 12.5, "pan": int(card), "count": 7}).decode()
    out = orjson.loads(CARD.body(body, "text") or "")
    assert out == {"amount": 12.5, "pan": "[REDACTED:card]", "count": 7}


@SETTINGS
@given(ibans(), st.booleans(), filler, filler)
def test_valid_ibans_are_found(iban: str, spaced: bool, before: str, after: str) -> None:
    shown = group(iban, " ", 4) if spaced else iban
    assert IBAN.text(before + shown + after) == before + "[REDACTED:iban]" + after


@SETTINGS
@given(ibans(), st.integers(2, 33), st.data())
def test_iban_near_misses_are_not_masked(iban: str, pos: int, data: st.DataObject) -> None:
    i = pos % len(iban)
    assume(i >= 2)  # keep the country code: a changed digit or letter must be caught by mod 97
    alphabet = string.digits if iban[i].isdigit() else string.ascii_uppercase
    other = data.draw(st.sampled_from([c for c in alphabet if c != iban[i]]))
    wrong = iban[:i] + other + iban[i + 1:]
    text = f"pay to {group(wrong, ' ', 4)} today"
    assert IBAN.text(text) == text


@SETTINGS
@given(st.from_regex(r"[a-z][a-z0-9._]{0,15}", fullmatch=True), st.from_regex(r"[a-z][a-z0-9]{0,10}", fullmatch=True),
       st.sampled_from(["com", "org", "io", "co.uk", "museum"]), filler, filler)
def test_emails_are_found(local: str, domain: str, tld: str, before: str, after: str) -> None:
    assume(not local.endswith("."))
    email = f"{local}@{domain}.{tld}"
    assert ALL.text(before + email + after) == before + "[REDACTED:email]" + after


@SETTINGS
@given(st.sampled_from(["1", "33", "44", "49", "353", "91"]), st.lists(st.integers(10, 9999), min_size=2, max_size=4),
       st.sampled_from([" ", "-", "."]), filler, filler)
def test_international_phone_numbers_are_found(cc: str, groups: list[int], sep: str, before: str, after: str) -> None:
    number = f"+{cc} " + sep.join(str(g) for g in groups)
    digits = sum(c.isdigit() for c in number)
    assume(8 <= digits <= 15)
    assert ALL.text(before + number + after) == before + "[REDACTED:phone]" + after


@pytest.mark.parametrize("text", [
    "pi is 3.14159265358979 and e is 2.718281828459045",
    "on 2026-01-15 at 12:30:45, version 1.2.3, id 12345678, ip 192.168.100.200",
    "user@localhost is not an address, nor is a@b",
    "ratio 0.4111111111111111",  # a Luhn-valid digit run inside a float is not a card
    "order DE00 not an iban, GB82WEST12345698765433 (wrong check digits)",
    "score -1234567.5, count 1234567890123",
])
def test_ordinary_values_are_left_alone(text: str) -> None:
    assert "1234567890123"[-1] != luhn_digit("123456789012")  # the count's check digit is wrong
    assert ALL.text(text) == text


def test_keyed_hash_is_stable_keyed_and_hides_the_value() -> None:
    a = Redactor(fields=["ssn"], patterns=["email"], mode="hash", key="key-one")
    b = Redactor(fields=["ssn"], patterns=["email"], mode="hash", key="key-two")
    t1 = a.text("mail Bob@Example.com")
    assert t1 == a.text("mail bob@example.com")  # normalised before hashing
    assert t1 != b.text("mail bob@example.com")
    assert "bob" not in t1.lower() and t1.startswith("mail [email:")
    col = a.table({"ssn": ["078-05-1120", "078-05-1120", "123-45-6789"]})["ssn"]
    assert col[0] == col[1] != col[2] and all("078" not in v for v in col)
    with pytest.raises(ValueError, match=r"needs redact\.key"):
        Redactor(fields=["x"], mode="hash")


def test_fields_by_name_and_json_path_in_tables_and_bodies() -> None:
    r = Redactor(fields=["email", "$.customer.card_holder", "$..iban_ref"])
    body = {"customer": {"card_holder": "Ada Lovelace", "email": "ada@example.org", "age": 36},
            "items": [{"iban_ref": "X-1"}, {"other": {"iban_ref": "Y-22"}}], "note": "keep me"}
    out = orjson.loads(r.body(orjson.dumps(body).decode(), "text") or "")
    assert out == {"customer": {"card_holder": "[REDACTED]", "email": "[REDACTED]", "age": 36},
                   "items": [{"iban_ref": "[REDACTED]"}, {"other": {"iban_ref": "[REDACTED]"}}],
                   "note": "keep me"}
    # a nested column flattened by the JSON codec matches by its last segment
    assert r.table({"customer.email": ["a@b.io"], "n": [1]}) == {"customer.email": ["[REDACTED]"], "n": [1]}


def test_a_record_keeps_no_planted_value_anywhere() -> None:
    """Column-named PII in a positional payload (Seldon names + ndarray) and patterns in free
    text: after redaction the record's JSON holds none of the planted values."""
    email, card, iban, phone = "grace.hopper@navy.mil", "4539 1488 0343 6467", "GB82 WEST 1234 5698 7654 32", "+44 20 7946 0958"
    request = {"data": {"names": ["email", "amount", "comment"],
                        "ndarray": [[email, 10.5, f"card {card}, iban {iban}, call {phone}"]]}}
    rec = InferenceRecord(id="r1", model="m", inputs={"email": [email], "amount": [10.5],
                                                       "comment": [f"card {card}, iban {iban}, call {phone}"]},
                          meta={"x-customer": email})
    rec.request, rec.request_encoding = encode_body(orjson.dumps(request))
    cfg = load_config(None, env={}, overrides={"redact": {"fields": ["email"], "patterns": ["email", "card", "phone", "iban"]}})
    r = Redactor.from_config(cfg.redact)
    assert r is not None
    out = r.record(rec).to_json().decode()
    for planted in (email, card, card.replace(" ", ""), iban, iban.replace(" ", ""), phone):
        assert planted not in out
    assert "10.5" in out  # the rest is still there


def test_binary_bodies_are_masked_in_place_keeping_their_length() -> None:
    raw = b"\x0a\x15grace.hopper@navy.mil\x12\x04\x01\x02\x03\x04"
    text, enc = encode_body(raw + b"\xff")
    assert enc == "base64"
    r = Redactor(patterns=["email"])
    out = base64.b64decode(r.body(text, enc) or "")
    assert len(out) == len(raw) + 1 and b"navy" not in out and out.startswith(b"\x0a\x15*****")


def test_dead_letters_lose_the_values_in_their_bytes_and_reason() -> None:
    r = Redactor(fields=["ssn"], patterns=["email"])
    dl = DeadLetter(raw=b'{"ssn": "078-05-1120", "who": "x@y.org", "bad": [}', source="json",
                    reason="bad JSON near 'x@y.org'")
    r.deadletter(dl)
    assert b"x@y.org" not in dl.raw and "x@y.org" not in dl.reason
    ok = DeadLetter(raw=orjson.dumps({"ssn": "078-05-1120", "v": 1}), source="json", reason="no model")
    assert b"078-05-1120" not in r.deadletter(ok).raw


def test_a_valid_checksum_under_an_unregistered_country_code_is_not_an_iban() -> None:
    # found by the near-miss property above: after a corrupted AD IBAN, "DH32 ..." (no such country)
    # passed mod 97 by chance (1 in 97) and was masked
    assert not iban_valid("DH32 3Y0Y DE85 4158 0010")
    text = "pay to AD09 DH32 3Y0Y DE85 4158 0010 today"
    assert IBAN.text(text) == text
