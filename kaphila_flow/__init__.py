"""kaphila_flow: script phone calls on the Kaphila voice API as plain coroutines.

async def flow(call: Call) -> str:
    await call.say("Welcome.")
    return await call.gather("Press 1 for sales, 2 for support.", num_digits=1)
"""

from . import events
from ._call import Call
from ._campaign import Campaign, CampaignSummary, Progress, RetryRules
from ._client import KaphilaClient
from ._clock import Clock, ScaledClock, SystemClock, VirtualClock
from ._commands import (
    BatchCall,
    Command,
    ForwardCall,
    ForwardReply,
    Gather,
    GatherReply,
    Hangup,
    HangupReply,
    MakeCall,
    MakeCallReply,
    Play,
    PlaybackReply,
    StopRecording,
    StopRecordingReply,
    Voice,
)
from ._config import Settings
from ._contacts import Contact, ContactProblem, load_contacts
from ._events import Event, parse_event
from ._exceptions import (
    ApiError,
    AuthenticationError,
    BadRequest,
    CallEnded,
    CallNotFound,
    ConfigurationError,
    ConnectError,
    FlowError,
    GatherFailed,
    InsufficientCredits,
    InvalidEvent,
    InvalidNumber,
    KaphilaError,
    MalformedResponse,
    MenuFailed,
    NetworkError,
    NoTrunks,
    OriginationFailed,
    RateLimited,
    ServerError,
    Timeout,
    TransportError,
    WebhookRejected,
)
from ._hours import CallingHours
from ._intake import IntakeReply
from ._logging import CallContextFilter, JsonFormatter, configure_logging
from ._metrics import Metrics
from ._numbers import PhoneNumber, normalize_number
from ._recovery import PlacementWindow
from ._result import CallResult, CallStatus, TranscriptEntry
from ._retry import RetryPolicy
from ._runtime import CallHandle, DeadLetter, Flow, Runtime
from ._session import Delivery
from ._store import CallIntent, CallStore, IntentStore, SqliteCallStore, StoredCall
from ._transport import Transport

__version__ = "0.1.0"

__all__ = [
    "ApiError",
    "AuthenticationError",
    "BadRequest",
    "BatchCall",
    "Call",
    "CallEnded",
    "CallingHours",
    "Campaign",
    "CampaignSummary",
    "Contact",
    "ContactProblem",
    "CallContextFilter",
    "CallHandle",
    "CallIntent",
    "CallNotFound",
    "CallResult",
    "CallStatus",
    "CallStore",
    "Clock",
    "Command",
    "ConfigurationError",
    "ConnectError",
    "DeadLetter",
    "Delivery",
    "Event",
    "Flow",
    "FlowError",
    "ForwardCall",
    "ForwardReply",
    "Gather",
    "GatherFailed",
    "GatherReply",
    "Hangup",
    "HangupReply",
    "InsufficientCredits",
    "IntentStore",
    "IntakeReply",
    "InvalidEvent",
    "InvalidNumber",
    "JsonFormatter",
    "KaphilaClient",
    "KaphilaError",
    "MakeCall",
    "MakeCallReply",
    "MalformedResponse",
    "MenuFailed",
    "Metrics",
    "NetworkError",
    "NoTrunks",
    "OriginationFailed",
    "PhoneNumber",
    "PlacementWindow",
    "Play",
    "PlaybackReply",
    "Progress",
    "RateLimited",
    "RetryPolicy",
    "RetryRules",
    "Runtime",
    "ScaledClock",
    "ServerError",
    "Settings",
    "SqliteCallStore",
    "StopRecording",
    "StopRecordingReply",
    "StoredCall",
    "SystemClock",
    "Timeout",
    "TranscriptEntry",
    "Transport",
    "TransportError",
    "VirtualClock",
    "Voice",
    "WebhookRejected",
    "events",
    "load_contacts",
    "normalize_number",
    "parse_event",
    "configure_logging",
    "__version__",
]
