"""Phone numbers: what a person types, in Kaphila's form (country code, 10-15 digits, no +)."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers

from ._exceptions import InvalidNumber

__all__ = ["normalize_number"]

_ALLOWED = set("0123456789+()-. /")


def normalize_number(number: str, *, default_region: str | None = None) -> str:
    """``+1 (608) 927-0862``, ``16089270862`` or ``001 608 927 0862`` -> ``16089270862``.

    Digits without ``+`` are read as international (country code first), as Kaphila
    dials them with a ``00`` prefix; a leading ``00`` is the international prefix.
    With ``default_region`` (e.g. ``"US"``), national forms such as ``(608) 927-0862``
    are accepted too. Raises ``InvalidNumber`` before any request is sent.
    """
    if not isinstance(number, str):
        raise InvalidNumber(number, f"expected a string, not {type(number).__name__}")
    return _normalize(number, default_region)


@lru_cache(maxsize=65536)  # pure, and parsing is the costly part of a call's setup
def _normalize(number: str, default_region: str | None) -> str:
    text = number.strip()
    if not text:
        raise InvalidNumber(number, "it is empty")
    if any(ch not in _ALLOWED for ch in text):
        raise InvalidNumber(number, "only digits, spaces, +, (, ), - and . may appear")
    digits = "".join(ch for ch in text if ch.isdigit())
    if text.startswith("+"):
        parsed = _parse(number, "+" + digits)
    elif digits.startswith("00"):
        parsed = _parse(number, "+" + digits[2:])
    else:
        national = _parse(number, digits, default_region) if default_region else None
        parsed = national if national is not None else _parse(number, "+" + digits)
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        raise InvalidNumber(number, "it is not a valid phone number")
    result = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)[1:]
    if not 10 <= len(result) <= 15:
        raise InvalidNumber(number, "Kaphila dials 10 to 15 digits including the country code")
    return result


def _parse(
    original: str, candidate: str, region: str | None = None
) -> phonenumbers.PhoneNumber | None:
    try:
        parsed = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException as exc:
        if region is not None:
            return None
        raise InvalidNumber(original, str(exc)) from None
    if region is not None and not phonenumbers.is_valid_number(parsed):
        return None
    return parsed
