"""Personal data in a message's text: which kinds, never the values. Pure (no Django).

A hit does not refuse the text: the message is accepted and put in front of a moderator,
so the detector leans towards precision on what volunteers write every day (versions,
dates, times, years, sums, code, ISBNs, documentation examples) and towards recall on
what plainly identifies a person.

Decisions (documented because each is debatable):
- Email: any address with a real-looking domain, except the documentation domains
  (example.com/.org/.net, *.example, *.test, *.invalid, *.localhost) and service accounts
  that name no one (git@github.com in an SSH example, noreply@, root@ ...). `user@host`
  without a top-level domain (ssh, scp) and `@decorator` are not addresses.
- IP: only publicly routable addresses; private, loopback and documentation ranges
  (192.0.2.0/24, 2001:db8::/32, ...) appear in tutorials and identify no one. Four-part
  version numbers after "v" or "version" are versions.
- Phone: international numbers (+ or 00 and 8 to 15 digits) and the common national shapes
  (German 0-prefixed area codes, North American (555) 123-4567 / 555-123-4567).
- Street address: a street with a house number is personal only in context, so it counts
  when a postcode follows (ZIP, UK postcode, 4 or 5 digit postcode and town) or a phrase like
  "I live at" / "meine Adresse" precedes it; "10 Downing Street" alone is not flagged.
- IBAN: mod-97 valid; credit card: 13 to 19 digits with a card network's prefix and a valid
  Luhn check. The well-known test and documentation numbers are not flagged.
"""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum


class Kind(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    STREET_ADDRESS = "street_address"
    IBAN = "iban"
    CREDIT_CARD = "credit_card"
    IP_ADDRESS = "ip_address"


# --- Email -------------------------------------------------------------------------------

_EMAIL = re.compile(
    r"(?<![\w.+-])([\w.+-]+)@((?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+([a-z]{2,24}))\b",
    re.IGNORECASE,
)
_DOC_DOMAINS = re.compile(
    r"(^|\.)(example\.(com|org|net)|[^.]+\.(example|test|invalid|localhost))$", re.IGNORECASE
)
_SERVICE_ACCOUNTS = frozenset(
    {"git", "root", "noreply", "no-reply", "donotreply", "do-not-reply", "postmaster",
     "mailer-daemon", "hostmaster", "webmaster", "abuse"}
)  # fmt: skip


def _emails(text: str) -> bool:
    for match in _EMAIL.finditer(text):
        local, domain = match.group(1), match.group(2)
        if _DOC_DOMAINS.search(domain) or local.lower() in _SERVICE_ACCOUNTS:
            continue
        return True
    return False


# --- IP addresses ------------------------------------------------------------------------

_IPV4 = re.compile(r"(?<![\w.])(\d{1,3}(?:\.\d{1,3}){3})(?![\w]|\.\d)")
_VERSION_CUE = re.compile(r"(?:\bv|\bversion\s*|\bver\.?\s*)$", re.IGNORECASE)
_IPV6 = re.compile(
    r"(?<![\w:])((?:[0-9a-f]{1,4}:){2,7}:?[0-9a-f]{0,4}(?::[0-9a-f]{1,4})*)(?![\w:])",
    re.IGNORECASE,
)


def _ip_addresses(text: str) -> bool:
    for match in _IPV4.finditer(text):
        if _VERSION_CUE.search(text[max(0, match.start() - 10) : match.start()]):
            continue
        try:
            if ipaddress.IPv4Address(match.group(1)).is_global:
                return True
        except ValueError:
            continue  # a part above 255: not an address (e.g. 10.0.19041.1)
    for match in _IPV6.finditer(text):
        if match.group(1).count(":") < 3:
            continue  # times such as 12:30:45 and short hex pairs are not addresses
        try:
            if ipaddress.IPv6Address(match.group(1)).is_global:
                return True
        except ValueError:
            continue
    return False


# --- Phone numbers -----------------------------------------------------------------------

# A run of digits with the separators people type in phone numbers.
_INTERNATIONAL = re.compile(r"(?<![\w+])(?:\+|00)[1-9][\d ()./-]{6,22}\d(?!\w)")
_NANP = re.compile(r"(?<![\w-])(?:\(\d{3}\)\s?|\d{3}[-. ])\d{3}[-. ]\d{4}(?![\w-])")
_GERMAN = re.compile(
    r"(?<![\w./-])(?:\(0\d{2,4}\)|0[1-9]\d{1,3})[ /-]?\d{3,8}(?:[ -]\d{1,5})?(?!\w|[./-]\d)"
)
_ISBN_CUE = re.compile(r"isbn(?:-1[03])?:?\s*$", re.IGNORECASE)


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)


def _phones(text: str) -> bool:
    for pattern, low, high in ((_INTERNATIONAL, 8, 15), (_NANP, 10, 10), (_GERMAN, 7, 12)):
        for match in pattern.finditer(text):
            value = match.group(0)
            if _ISBN_CUE.search(text[max(0, match.start() - 12) : match.start()]):
                continue
            if "." in value and pattern is not _NANP:
                continue  # 0.5.2024, 00.12 and other dotted numbers are not dialled
            if low <= len(_digits(value)) <= high:
                return True
    return False


# --- Bank and card numbers ---------------------------------------------------------------

_IBAN = re.compile(r"\b([A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30})\b")
_DOC_IBANS = frozenset({"DE89370400440532013000", "GB82WEST12345698765432"})
_CARD = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")
_CARD_PREFIX = re.compile(r"^(?:4|5[1-5]|2[2-7]|3[47]|3[068]|35|6011|65|62)")
_TEST_CARDS = frozenset(
    {"4111111111111111", "4242424242424242", "4012888888881881", "5555555555554444",
     "5105105105105100", "378282246310005", "371449635398431", "6011111111111117",
     "4000056655665556", "2223003122003222"}
)  # fmt: skip


def _iban_valid(value: str) -> bool:
    value = value.replace(" ", "")
    if not 15 <= len(value) <= 34 or value in _DOC_IBANS:
        return False
    rearranged = value[4:] + value[:4]
    number = "".join(str(int(char, 36)) for char in rearranged)
    return int(number) % 97 == 1


def _ibans(text: str) -> bool:
    return any(_iban_valid(match.group(1)) for match in _IBAN.finditer(text.upper()))


def luhn_valid(number: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _card_shaped(number: str) -> bool:
    return bool(_CARD_PREFIX.match(number)) and luhn_valid(number)


def _cards(text: str) -> bool:
    for match in _CARD.finditer(text):
        number = _digits(match.group(0))
        separators = set(re.sub(r"\d", "", match.group(0)))
        if len(separators) > 1 or number in _TEST_CARDS:
            continue  # 12-34 5678 ... mixes separators: a table, not a card
        if _card_shaped(number):
            return True
    return False


# --- Street addresses --------------------------------------------------------------------

_EN_STREET = (
    r"\b\d{1,5}[A-Za-z]?\s+(?:[A-Z][a-z]+\.?\s+){1,3}"
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl"
    r"|Terrace|Close|Crescent|Parkway|Square)\b\.?"
)
_DE_STREET = (
    r"\b[A-ZÄÖÜ][a-zäöüß]+(?:-[A-ZÄÖÜ]?[a-zäöüß]+)*"
    r"(?:-?[Ss]tra(?:ß|ss)e|str\.|-?[Ww]eg|-?[Aa]llee|-?[Pp]latz|-?[Gg]asse|ring|damm|ufer"
    r"|chaussee|steig|pfad)"
    r"\s+\d{1,4}\s?[a-z]?\b"
)
_STREET = re.compile(f"(?:{_EN_STREET}|{_DE_STREET})")
_POSTCODE = re.compile(
    r"(?:\b[A-Z]{2}\s+\d{5}(?:-\d{4})?\b"  # US: state and ZIP
    r"|\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b"  # UK
    r"|\b(?:[A-Z]-)?\d{4,5}\s+[A-ZÄÖÜ][a-zäöüß]+)"  # DE, AT, CH and most of Europe
)
_ADDRESS_CUE = re.compile(
    r"(?:\blive (?:at|on)|\bmy (?:home |postal |street )?address|\bsend (?:it|them) to"
    r"|\bwohne (?:in|an|auf)|\b(?:meine|unsere) (?:adresse|anschrift)"
    r"|\bschick(?:e|t)? (?:es|sie) an)"
    r"[^.\n]{0,40}$",
    re.IGNORECASE,
)


def _street_addresses(text: str) -> bool:
    for match in _STREET.finditer(text):
        after = text[match.end() : match.end() + 60]
        before = text[max(0, match.start() - 60) : match.start()]
        if _POSTCODE.search(after) or _ADDRESS_CUE.search(before):
            return True
    return False


def _without_account_numbers(text: str) -> str:
    """The text with IBAN- and card-shaped numbers blanked, so that their digit groups are
    not read as phone numbers too (valid or documentation examples alike)."""
    text = _IBAN.sub(" ", text)
    return _CARD.sub(
        lambda match: " " if _card_shaped(_digits(match.group(0))) else match.group(0), text
    )


def detect(text: str) -> list[Kind]:
    """The kinds of personal data in `text`, in a fixed order (empty when none)."""
    found = []
    if _emails(text):
        found.append(Kind.EMAIL)
    if _phones(_without_account_numbers(text)):
        found.append(Kind.PHONE)
    if _street_addresses(text):
        found.append(Kind.STREET_ADDRESS)
    if _ibans(text):
        found.append(Kind.IBAN)
    if _cards(text):
        found.append(Kind.CREDIT_CARD)
    if _ip_addresses(text):
        found.append(Kind.IP_ADDRESS)
    return found
