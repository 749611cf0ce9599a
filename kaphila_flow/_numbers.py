"""Phone numbers: what a person types, in Kaphila's documented form.

Kaphila's rule (the quick-start and the production reference agree): a number is 10 to
15 digits, country code first, without ``+`` (``16089270862``); Kaphila dials it with a
``00`` prefix. This module accepts exactly that, written the ways people write it
(``+1 (608) 927-0862``, ``001 608 927 0862``, ``1.608.927.0862``), and sends the digits.

What it does not do is guess. A number that may be national (10 digits without ``+``, or
a leading trunk ``0``) is read in the default region when one is set, and refused with
the likely international form otherwise. Whether a number is in use in its country's
numbering plan is an opt-in check (``strict=True``), never a reason to rewrite it.
"""

from __future__ import annotations

from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneNumberFormat, ValidationResult

from ._exceptions import BadRequest, ConfigurationError, InvalidNumber

__all__ = ["PhoneNumber", "check_region", "normalize_number", "provider_number"]

#: Kaphila's documented length, country code included.
MIN_DIGITS = 10
MAX_DIGITS = 15
_DIGITS = frozenset("0123456789")
_PUNCTUATION = frozenset("()-./")
_EXAMPLE = "16089270862"


def _region_hint(region: str) -> str:
    return (
        f'or set a default region (default_region="{region}", '
        f"KAPHILA_DEFAULT_REGION={region} or --default-region {region})"
    )


_LENGTH_PROBLEMS = {
    ValidationResult.TOO_SHORT: "too short",
    ValidationResult.TOO_LONG: "too long",
    ValidationResult.INVALID_LENGTH: "not a possible length",
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "a local number without its area code",
    ValidationResult.INVALID_COUNTRY_CODE: "not a possible number",
}


class PhoneNumber(str):
    """A number in Kaphila's wire form: 10 to 15 digits, country code first, no ``+``.

    It is a ``str`` (``"16089270862"``), so it goes wherever a number string goes;
    ``PhoneNumber("16089270862")`` checks the wire form, ``PhoneNumber.parse`` reads
    what a person typed. A ``PhoneNumber`` given to ``normalize_number`` comes back as it
    is: a number is read once, where it enters the program.
    """

    __slots__ = ()

    def __new__(cls, digits: str) -> PhoneNumber:
        if isinstance(digits, PhoneNumber):
            return digits
        if (
            not isinstance(digits, str)
            or not set(digits) <= _DIGITS
            or not MIN_DIGITS <= len(digits) <= MAX_DIGITS
        ):
            raise InvalidNumber(
                digits,
                f"Kaphila's form is {MIN_DIGITS} to {MAX_DIGITS} digits, country code first, "
                f"without + (e.g. {_EXAMPLE}); use PhoneNumber.parse() for a typed number",
            )
        return super().__new__(cls, digits)

    @classmethod
    def parse(
        cls, text: str, *, default_region: str | None = None, strict: bool = False
    ) -> PhoneNumber:
        """Read a typed number; raises ``InvalidNumber`` with the reason (see the module)."""
        if isinstance(text, PhoneNumber):
            if strict:
                _check_in_use(text, text)
            return text
        if not isinstance(text, str):
            raise InvalidNumber(text, f"expected a string, not {type(text).__name__}")
        return _parse(text, check_region(default_region), strict)

    @property
    def e164(self) -> str:
        """``+16089270862``."""
        return "+" + self

    @property
    def international(self) -> str:
        """``+1 608-927-0862`` where the numbering plan knows the country, else ``e164``."""
        try:
            parsed = phonenumbers.parse(self.e164)
        except phonenumbers.NumberParseException:
            return self.e164
        return phonenumbers.format_number(parsed, PhoneNumberFormat.INTERNATIONAL)


def normalize_number(
    number: str, *, default_region: str | None = None, strict: bool = False
) -> str:
    """``+1 (608) 927-0862``, ``16089270862`` or ``001 608 927 0862`` -> ``16089270862``.

    Accepts Kaphila's documented form (10 to 15 digits, country code first), with an
    optional ``+`` or ``00`` in front, spaces and ``( ) - . /``. A number that could be
    national (10 digits without ``+``, or a leading trunk ``0`` as in ``020 7946 0958``)
    is read in ``default_region`` (``"US"``, ``"GB"`` ...); without one it is refused,
    the message naming the likely international form. ``strict=True`` also refuses
    numbers that are not in use in their country's numbering plan. Returns a
    ``PhoneNumber`` (a ``str``); raises ``InvalidNumber`` before any request is sent.
    """
    return PhoneNumber.parse(number, default_region=default_region, strict=strict)


def check_region(region: str | None) -> str | None:
    """A default region as its two-letter code (``"us"`` -> ``"US"``), or ``None``."""
    if region is None:
        return None
    code = region.strip().upper() if isinstance(region, str) else region
    if not isinstance(code, str) or code not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigurationError(
            f"default region {region!r} is not a region code: use two letters such as US, GB or DE"
        )
    return code


def provider_number(value: str, field: str = "number") -> PhoneNumber:
    """Kaphila's own check on a number it receives: 10 to 15 digits, no ``+``.

    Answers a broken rule as Kaphila does, with a 400 (``BadRequest``); the simulator
    uses it, so it accepts every number the provider documents, and only those.
    """
    try:
        return PhoneNumber(value)
    except InvalidNumber:
        raise BadRequest(
            f"Invalid {field}: use {MIN_DIGITS}-{MAX_DIGITS} digits without + (e.g. {_EXAMPLE})"
        ) from None


@lru_cache(maxsize=65536)  # pure; a campaign reads the same numbers again on resuming
def _parse(text: str, region: str | None, strict: bool) -> PhoneNumber:
    digits = _digits_of(text)
    written = text.strip()
    if written.startswith("+"):
        number = _international(text, digits)
    elif digits.startswith("00"):  # the international prefix Kaphila itself dials
        number = _international(text, digits[2:])
    elif digits.startswith("0") or len(digits) <= MIN_DIGITS:
        number = _national(text, written, digits, region)
    else:  # 11 to 15 digits: the documented form, whatever the default region
        number = _international(text, digits)
    if strict:
        _check_in_use(text, number)
    return number


def _digits_of(text: str) -> str:
    written = text.strip()
    if not written:
        raise InvalidNumber(text, "it is empty")
    for index, char in enumerate(written):
        if char == "+" and index == 0:
            continue
        if char == "+":
            raise InvalidNumber(text, "a + may only come first")
        if char not in _DIGITS and char not in _PUNCTUATION and not char.isspace():
            raise InvalidNumber(
                text, "only digits, spaces, a leading +, (, ), -, . and / may appear"
            )
    digits = "".join(char for char in written if char in _DIGITS)
    if not digits:
        raise InvalidNumber(text, "it has no digits")
    return digits


def _international(text: str, digits: str) -> PhoneNumber:
    if digits.startswith("0"):
        raise InvalidNumber(text, "no country code starts with 0")
    _check_length(text, digits)
    return PhoneNumber(digits)


def _check_length(text: str, digits: str) -> None:
    if len(digits) < MIN_DIGITS:
        raise InvalidNumber(
            text,
            f"it has {len(digits)} digits; Kaphila dials {MIN_DIGITS} to {MAX_DIGITS}, "
            "country code included",
        )
    if len(digits) > MAX_DIGITS:
        raise InvalidNumber(
            text,
            f"it has {len(digits)} digits; Kaphila dials at most {MAX_DIGITS}, "
            "country code included",
        )


def _national(text: str, written: str, digits: str, region: str | None) -> PhoneNumber:
    """A number that may be national: read in ``region``, or refused with a suggestion."""
    if region is None:
        if digits.startswith("0"):
            raise InvalidNumber(
                text,
                "it starts with 0, a national trunk prefix: write its country code instead "
                f"(020 7946 0958 in the UK is +44 20 7946 0958), {_region_hint('GB')}",
            )
        if len(digits) < MIN_DIGITS:
            _check_length(text, digits)
        raise InvalidNumber(
            text, f"10 digits without + may be a national number; {_suggestion(digits)}"
        )
    try:
        parsed = phonenumbers.parse(written, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidNumber(text, f"not a number in {region}: {exc}") from None
    reason = phonenumbers.is_possible_number_with_reason(parsed)
    if reason != ValidationResult.IS_POSSIBLE:
        problem = _LENGTH_PROBLEMS.get(reason, "not a possible number")
        raise InvalidNumber(text, f"read as a number in {region}, it is {problem}")
    wire = phonenumbers.format_number(parsed, PhoneNumberFormat.E164)[1:]
    _check_length(text, wire)
    return PhoneNumber(wire)


@lru_cache(maxsize=1024)
def _suggestion(digits: str) -> str:
    """The likely international forms of 10 digits, for the refusal's message."""
    forms: list[str] = []
    regions: list[str] = []
    for candidate in ("+1" + digits, "+" + digits):  # US/Canada's national length first
        try:
            parsed = phonenumbers.parse(candidate)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(parsed):
            formatted = phonenumbers.format_number(parsed, PhoneNumberFormat.INTERNATIONAL)
            region = phonenumbers.region_code_for_number(parsed) or "001"
            forms.append(f"{formatted} ({region})")
            regions.append(region)
    if not forms:
        return f"write it with its country code and a +, {_region_hint('US')}"
    hint = _region_hint(regions[0] if regions[0] in phonenumbers.SUPPORTED_REGIONS else "US")
    return f"write it with its country code, e.g. {' or '.join(forms)}, {hint}"


def _check_in_use(text: str, number: PhoneNumber) -> None:
    try:
        parsed = phonenumbers.parse(number.e164)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        raise InvalidNumber(
            text, f"{number.e164} is not in use in its country's numbering plan (strict check)"
        )
