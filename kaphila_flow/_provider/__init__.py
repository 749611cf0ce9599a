"""The one model of the Kaphila provider, without I/O, and what it is made of.

``Provider`` (accounts, calls, webhooks, time), ``CallModel`` (one call's states and
events), ``CalleeRun`` (what the phone at the other end does), ``Account`` and ``Faults``.
The hosts are ``kaphila_flow.testing.FakeKaphila`` and ``kaphila_flow.simulator``.
"""

from ._accounts import Account, AccountState
from ._faults import Faults
from ._kaphila import DEFAULT_KEY, PendingPlayback, Provider, ProviderCall, Webhook

__all__ = [
    "DEFAULT_KEY",
    "Account",
    "AccountState",
    "Faults",
    "PendingPlayback",
    "Provider",
    "ProviderCall",
    "Webhook",
]
