"""Personal data detection (pure, no database): real-looking texts in English and German,
those that must be flagged and those that must not."""

from __future__ import annotations

import ipaddress
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.moderation.pii import Kind, detect, luhn_valid

FLAGGED = [
    # Email
    ("Write to me at anna.schmidt@gmx.de, I answer quickly.", Kind.EMAIL),
    ("My email is John.Doe+newsletter@gmail.com if you need it", Kind.EMAIL),
    ("Schreib mir: k.mueller@t-online.de", Kind.EMAIL),
    ("Kontakt: info.berlin@meinefirma.co.uk", Kind.EMAIL),
    # Phone
    ("Call me on +49 30 12345678 tomorrow.", Kind.PHONE),
    ("Ruf mich an: 0171 2345678", Kind.PHONE),
    ("Meine Nummer ist (030) 1234-5678.", Kind.PHONE),
    ("Tel. 089/1234567, ab 18 Uhr", Kind.PHONE),
    ("My number is (415) 555-2671", Kind.PHONE),
    ("text me at 415-555-2671 or 415.555.2671", Kind.PHONE),
    ("+44 20 7946 0958 is my office line", Kind.PHONE),
    ("Mobil: 0049 171 2345678", Kind.PHONE),
    ("+1 (212) 555-0198", Kind.PHONE),
    # Street address
    ("I live at 742 Evergreen Terrace, Springfield", Kind.STREET_ADDRESS),
    ("Send it to 123 Main St, Springfield, IL 62704", Kind.STREET_ADDRESS),
    ("Ich wohne in der Lindenstraße 12 in Köln", Kind.STREET_ADDRESS),
    ("Meine Adresse: Hauptstr. 5, 10115 Berlin", Kind.STREET_ADDRESS),
    ("Paket an Rosenweg 3a, 80331 München bitte", Kind.STREET_ADDRESS),
    ("Ich wohne in der Konrad-Adenauer-Straße 7 in Bonn", Kind.STREET_ADDRESS),
    ("Office: 10 Baker Street, London NW1 6XE", Kind.STREET_ADDRESS),
    # IBAN
    ("Überweise an DE44 5001 0517 5407 3249 31, danke", Kind.IBAN),
    ("IBAN GB33BUKB20201555555555", Kind.IBAN),
    ("Konto: AT61 1904 3002 3457 3201", Kind.IBAN),
    # Credit card
    ("card: 4532 0151 1283 0366 exp 12/27", Kind.CREDIT_CARD),
    ("Meine Kreditkarte 5425-2334-3010-9903", Kind.CREDIT_CARD),
    ("Amex 3412 876543 21091 is not mine", Kind.CREDIT_CARD),
    # IP address
    ("My home server is at 93.184.216.34, can you scan it?", Kind.IP_ADDRESS),
    ("Meine IP ist 84.132.17.5", Kind.IP_ADDRESS),
    ("server at 2a00:1450:4001:82b::200e", Kind.IP_ADDRESS),
]

NOT_FLAGGED = [
    # Versions, dates, times, years, sums, ordinary numbers
    "Python 3.11.7 fixed the bug; upgrade from 3.10.12.",
    "Meeting on 2024-01-15 at 12:30, or 01/15/2024 at 1:30 pm.",
    "Am 15.01.2024 um 14:30 Uhr beginnt der Kurs.",
    "In 1989 the wall fell; in 2024 there were 1,000,000 visitors.",
    "What is 12345 * 678 + 3.14159?",
    "Compute 2^32 = 4294967296 and 10^9 + 7 = 1000000007.",
    "Pi is 3.14159265358979 and e is 2.718281828.",
    "The population is 83 200 000 people.",
    "Order #12345678 shipped; tracking 00340434161234567.",
    "Erstelle eine Tabelle der Jahre 2019 2020 2021 2022.",
    "In 2023, 1.2 million people moved to 3 cities.",
    "Der Zug fährt um 07:45 ab Gleis 3 nach Hamburg.",
    "Die Postleitzahl 10115 gehört zu Berlin-Mitte.",
    "Der Code lautet 0815, das Passwort 4711.",
    "Windows 10.0.19041.1 and version 1.2.3.4 and v2.0.0.1",
    "time 12:30:45 and 23:59:59.999",
    "Rechne 0,5 + 0,25 = 0,75 und 100 / 4 = 25.",
    # Code
    "```python\n@app.route('/')\ndef index():\n    return 'hi'\n```",
    "@dataclass\nclass Point:\n    x: int",
    "ssh user@host -p 2222, then scp file.txt user@server:/tmp",
    "git clone git@github.com:org/repo.git",
    "The UUID 123e4567-e89b-12d3-a456-426614174000 is random.",
    "Use `docker run -p 8080:80 nginx:1.25.3`",
    # Documentation examples
    "email me at alice@example.com or bob@example.org",
    "contact carol@mail.example or dave@site.test",
    "noreply@github.com sent the notification",
    "Set the IP to 192.168.1.10 or 10.0.0.1 or 127.0.0.1",
    "Use 203.0.113.5 and 2001:db8::1 in documentation.",
    "Test card 4111 1111 1111 1111 for Stripe, or 4242 4242 4242 4242.",
    "The DE89 3704 0044 0532 0130 00 example IBAN from Wikipedia",
    # Books and places everybody knows, without a postcode or "I live at"
    "ISBN 978-3-16-148410-0 and ISBN 0-306-40615-2",
    "What is at 10 Downing Street?",
    "Die Hauptstraße 5 ist ein schönes Haus.",
    "Phone numbers in the US look like (555) XXX-XXXX.",
    "The number 1234567890123456 fails the Luhn check.",
]


@pytest.mark.parametrize(("text", "kind"), FLAGGED)
def test_personal_data_in_a_text_is_found_with_its_kind(text: str, kind: Kind) -> None:
    assert kind in detect(text)


@pytest.mark.parametrize("text", NOT_FLAGGED)
def test_ordinary_texts_with_numbers_code_and_examples_are_not_flagged(text: str) -> None:
    assert detect(text) == []


def test_several_kinds_are_reported_once_each_in_a_fixed_order() -> None:
    text = "Mail max@posteo.de, call +49 171 2345678 or mail max@posteo.de again"
    assert detect(text) == [Kind.EMAIL, Kind.PHONE]


def test_a_card_or_iban_is_not_also_reported_as_a_phone_number() -> None:
    assert detect("DE44 5001 0517 5407 3249 31") == [Kind.IBAN]
    assert detect("4532 0151 1283 0366") == [Kind.CREDIT_CARD]


def test_the_luhn_check_accepts_real_card_numbers_and_refuses_one_digit_changes() -> None:
    assert luhn_valid("4532015112830366")
    assert not luhn_valid("4532015112830367")


# --- Generated inputs --------------------------------------------------------------------

_word = st.text(string.ascii_lowercase, min_size=2, max_size=8)


@given(
    local=st.from_regex(r"[a-z][a-z0-9._]{1,12}[a-z0-9]", fullmatch=True),
    domain=_word,
    tld=st.sampled_from(["de", "com", "net", "io", "fr", "at", "ch"]),
)
def test_any_address_at_a_real_looking_domain_is_an_email(
    local: str, domain: str, tld: str
) -> None:
    if local in ("git", "root", "abuse"):
        return
    assert Kind.EMAIL in detect(f"Schreib an {local}@{domain}.{tld} bitte")


@given(
    year=st.integers(1900, 2100), month=st.integers(1, 12), day=st.integers(1, 28),
    hour=st.integers(0, 23), minute=st.integers(0, 59),
)  # fmt: skip
def test_dates_and_times_in_every_common_notation_are_never_flagged(
    year: int, month: int, day: int, hour: int, minute: int
) -> None:
    text = (
        f"{year}-{month:02}-{day:02} {hour:02}:{minute:02}, {day:02}.{month:02}.{year}, "
        f"{month}/{day}/{year} um {hour}:{minute:02} Uhr, im Jahr {year}"
    )
    assert detect(text) == []


@given(parts=st.lists(st.integers(0, 40), min_size=2, max_size=3))
def test_version_numbers_are_never_flagged(parts: list[int]) -> None:
    assert detect(f"pip install django=={'.'.join(map(str, parts))}") == []


@given(st.integers(0, 10**12), st.integers(0, 10**6))
def test_sums_of_ordinary_numbers_are_never_flagged(a: int, b: int) -> None:
    assert detect(f"What is {a} + {b} = {a + b}? And {a} * {b}?") == []


@given(st.ip_addresses(v=4))
def test_an_ipv4_address_is_flagged_exactly_when_it_is_publicly_routable(
    address: ipaddress.IPv4Address,
) -> None:
    assert (Kind.IP_ADDRESS in detect(f"ping {address} now")) == address.is_global


@given(st.from_regex(r"4[0-9]{14}", fullmatch=True))
def test_a_visa_number_with_its_luhn_digit_is_a_card(body: str) -> None:
    check = next(d for d in "0123456789" if luhn_valid(body + d))
    number = body + check
    grouped = " ".join(number[i : i + 4] for i in range(0, 16, 4))
    assert Kind.CREDIT_CARD in detect(f"Karte {grouped}") or number in {
        "4111111111111111",
        "4242424242424242",
        "4012888888881881",
        "4000056655665556",
    }
