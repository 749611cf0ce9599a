"""Test helpers: an in-memory Kaphila (``FakeKaphila``) and the ``kaphila`` fixture."""

from ._fake import FakeKaphila, Phone, Turn

__all__ = ["FakeKaphila", "Phone", "Turn"]
