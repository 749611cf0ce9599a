"""Small helpers to read JSON objects at the boundary with clear errors."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


class FieldError(ValueError):
    """A field of a JSON object is missing or has the wrong type."""


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def req_str(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        if key not in data:
            raise FieldError(f"missing field {key!r}")
        raise FieldError(f"field {key!r} must be a non-empty string, not {_type_name(value)}")
    return value


def opt_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise FieldError(f"field {key!r} must be a string, not {_type_name(value)}")
    return value


def opt_code(data: Mapping[str, Any], key: str) -> str | None:
    """A code documented as a string that some senders write as a number (hangupCause)."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise FieldError(f"field {key!r} must be a string, not {_type_name(value)}")
    return value


def opt_bool(data: Mapping[str, Any], key: str) -> bool | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise FieldError(f"field {key!r} must be true or false, not {_type_name(value)}")
    return value


def opt_int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FieldError(f"field {key!r} must be a number, not {_type_name(value)}")
    if isinstance(value, float) and not value.is_integer():
        raise FieldError(f"field {key!r} must be a whole number, not {value!r}")
    return int(value)


def opt_float(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FieldError(f"field {key!r} must be a number, not {_type_name(value)}")
    result = float(value)
    if result != result or result in (float("inf"), float("-inf")):
        raise FieldError(f"field {key!r} must be a finite number")
    return result


def opt_obj(data: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise FieldError(f"field {key!r} must be an object, not {_type_name(value)}")
    return value


def opt_list(data: Mapping[str, Any], key: str, item: Callable[[Any], T]) -> list[T]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise FieldError(f"field {key!r} must be a list, not {_type_name(value)}")
    return [item(v) for v in value]
