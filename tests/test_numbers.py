import pytest

from kaphila_flow import InvalidNumber, normalize_number


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("+1 (608) 927-0862", "16089270862"),
        ("16089270862", "16089270862"),
        ("001 608 927 0862", "16089270862"),
        ("+1.608.927.0862", "16089270862"),
        ("+44 20 7946 0958", "442079460958"),
        ("0044 20 7946 0958", "442079460958"),
        ("+39 06 6982 0000", "390669820000"),  # Italy keeps its leading zero
    ],
)
def test_what_people_type_becomes_kaphilas_form(typed: str, expected: str) -> None:
    assert normalize_number(typed) == expected


def test_national_forms_need_a_region() -> None:
    assert normalize_number("(608) 927-0862", default_region="US") == "16089270862"
    assert normalize_number("16089270862", default_region="US") == "16089270862"
    # Without a region, digits are read country code first, as Kaphila dials them:
    # here +60 (Malaysia), not the United States.
    assert normalize_number("(608) 927-0862") == "6089270862"


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("call me", "only digits"),
        ("123", "not a valid"),
        ("+1 555", "not a valid"),
        ("19876543210", "not a valid"),  # no such area code
        ("+99999999999", "Could not interpret"),
        (16089270862, "expected a string"),
        (None, "expected a string"),
    ],
)
def test_bad_numbers_raise_invalid_number(bad: object, reason: str) -> None:
    with pytest.raises(InvalidNumber, match=reason) as caught:
        normalize_number(bad)  # type: ignore[arg-type]
    assert isinstance(caught.value, ValueError)
