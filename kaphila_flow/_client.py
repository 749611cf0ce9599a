"""``KaphilaClient``: a typed async client for every Kaphila endpoint, over httpx.

It is also the real ``Transport``: ``send(command)`` is the one place requests go
through. The API key travels only in the ``Authorization`` header: never in a repr,
a log record or an exception message.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import time
from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio
import httpx

from ._api_types import (
    AccountInfo,
    Analytics,
    CallInfo,
    CallList,
    CallLogPage,
    Dashboard,
    Health,
    RecordingList,
)
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
    PlayTo,
    StopRecording,
    StopRecordingReply,
    Voice,
    url_path,
)
from ._exceptions import (
    ApiError,
    AuthenticationError,
    BadRequest,
    CallNotFound,
    ConfigurationError,
    ConnectError,
    InsufficientCredits,
    KaphilaError,
    MalformedResponse,
    NetworkError,
    NoTrunks,
    OriginationFailed,
    RateLimited,
    ServerError,
    Timeout,
)
from ._metrics import Metrics
from ._model import SpeechTiming
from ._numbers import normalize_number
from ._ratelimit import COUNTED_PATHS, HourlyLimiter, limiter_for_key
from ._retry import RetryPolicy
from ._wire import FieldError

__all__ = ["DEFAULT_TIMEOUT", "KaphilaClient", "playback_timeout"]

logger = logging.getLogger("kaphila_flow.client")
R = TypeVar("R")

#: Connect fast. ``/voice`` and ``/play`` answer only once playback is over, so their
#: read timeout is this one plus the playback's length (``playback_timeout``).
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=10.0, pool=10.0)
#: How long speech takes (150 words a minute, as the simulator and the gather timer
#: reckon), with a quarter more for voices that speak slower.
SPEECH = SpeechTiming()
SPEECH_ALLOWANCE = 1.25
#: A stored sound file's length is unknown: room for one of up to 90 seconds.
SOUND_FILE_SECONDS = 90.0
USER_AGENT = "kaphila-flow/0.1.0"

_ERRORS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: AuthenticationError,
    402: InsufficientCredits,
    404: CallNotFound,
    429: RateLimited,
    500: ServerError,
    503: NoTrunks,
}


def _placement(
    kind: type[MakeCall],
    number: str,
    webhook_url: str | None,
    caller_id: str | None,
    use_amd: bool,
    voice_name: str | None,
    ring_timeout: int,
) -> MakeCall:
    """A ``/makecall`` or ``/batchcall`` with both numbers in Kaphila's form."""
    return kind(
        normalize_number(number),
        webhook_url=webhook_url,
        caller_id=normalize_number(caller_id) if caller_id else None,
        use_amd=use_amd,
        voice_name=voice_name,
        ring_timeout=ring_timeout,
    )


def playback_timeout(base: httpx.Timeout, command: Command[Any]) -> httpx.Timeout | None:
    """``base`` with room for the playback a ``/voice`` or ``/play`` answers after.

    ``/voice``: the text's length at 150 words a minute, plus a quarter; ``/play``:
    ``SOUND_FILE_SECONDS``. ``None`` (the client's own timeout) for other commands.
    """
    if isinstance(command, Voice):
        playing = SPEECH.duration(command.text) * SPEECH_ALLOWANCE
    elif isinstance(command, Play):
        playing = SOUND_FILE_SECONDS
    else:
        return None
    if base.read is None:
        return base
    return httpx.Timeout(
        connect=base.connect, read=base.read + playing, write=base.write, pool=base.pool
    )


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


class KaphilaClient:
    """``async with KaphilaClient(api_key) as kaphila: await kaphila.voice(call_id, "Hi")``."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = "https://kaphila.com",
        timeout: httpx.Timeout | float | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        user_agent: str | None = None,
        allow_insecure: bool = False,
        retry: RetryPolicy | None = None,
        rate_limit: int | HourlyLimiter | None = 100,
        metrics: Metrics | None = None,
    ) -> None:
        """``rate_limit``: requests per hour on the counted endpoints (shared by every
        client with this key), a limiter of your own, or ``None`` for no limiting.
        ``retry``: see ``RetryPolicy`` for what is retried (default: up to 4 tries).
        ``metrics``: where requests, retries and rate-limit waits are counted (a new
        ``Metrics`` unless given; a ``Runtime`` over this client shares it).
        """
        if not isinstance(api_key, str) or not api_key.strip():
            raise ConfigurationError("the Kaphila API key must be a non-empty string")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(f"base_url must be an http(s) URL, not {base_url!r}")
        if parts.scheme == "http" and not allow_insecure and not is_loopback(parts.hostname):
            raise ConfigurationError(
                f"refusing to send the API key in clear text to {parts.hostname}: use https, "
                "or allow_insecure=True if something on the way encrypts it"
            )
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.metrics = metrics if metrics is not None else Metrics()
        if isinstance(rate_limit, HourlyLimiter) or rate_limit is None:
            self.limiter = rate_limit
        else:
            self.limiter = limiter_for_key(api_key.strip(), rate_limit)
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
            transport=transport,
            headers={
                "Authorization": f"Bearer {api_key.strip()}",
                "Content-Type": "application/json",
                "User-Agent": user_agent or USER_AGENT,
            },
        )

    def __repr__(self) -> str:
        return f"<KaphilaClient {self.base_url}>"

    async def __aenter__(self) -> KaphilaClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- the one way out -------------------------------------------------------------

    async def send(self, command: Command[R]) -> R:
        """POST a command and return its typed reply (the ``Transport`` interface)."""
        path = url_path(command)
        timeout = playback_timeout(self._http.timeout, command)
        data = await self._request(
            "POST", path, json_body=command.body(), repeatable=command.repeatable, timeout=timeout
        )
        try:
            return command.parse_reply(data)
        except FieldError as exc:
            raise MalformedResponse(f"Kaphila {path} answered with {exc}", endpoint=path) from None

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        repeatable: bool = True,
        timeout: httpx.Timeout | None = None,
    ) -> Mapping[str, Any]:
        """One request with the retry policy and the rate limiter applied."""
        attempt = 0
        while True:
            attempt += 1
            if self.limiter is not None and path in COUNTED_PATHS:
                self.metrics.rate_limit_wait(await self.limiter.acquire())
            try:
                return await self._once(method, path, json_body, timeout)
            except KaphilaError as error:
                if not self.retry.retryable(error, repeatable=repeatable):
                    raise
                delay = self.retry.delay(attempt, error)
                if delay is None:
                    raise
                self.metrics.retry(path)
                logger.info(
                    "%s %s failed (%s); try %d in %.2f s",
                    method,
                    path,
                    type(error).__name__,
                    attempt + 1,
                    delay,
                )
                await anyio.sleep(delay)

    async def _once(
        self,
        method: str,
        path: str,
        json_body: Mapping[str, Any] | None,
        timeout: httpx.Timeout | None = None,
    ) -> Mapping[str, Any]:
        response = await self._raw(method, path, json_body=json_body, timeout=timeout)
        data = self._decode(response, path)
        if response.status_code >= 400 or data.get("success") is False:
            raise self._error(response, path, data)
        return data

    async def _raw(
        self,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> httpx.Response:
        started = time.perf_counter()
        try:
            response = await self._http.request(
                method, path, json=json_body, timeout=timeout or httpx.USE_CLIENT_DEFAULT
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # A pool timeout never got a connection: like a refused one, nothing was sent,
            # so the request is a plain failure and safe to try again (never "unknown").
            self.metrics.request(path, "connect_error")
            raise ConnectError(
                f"could not connect to Kaphila for {path} ({type(exc).__name__})", endpoint=path
            ) from None
        except httpx.TimeoutException as exc:
            self.metrics.request(path, "timeout")
            raise Timeout(
                f"Kaphila did not answer {path} in time ({type(exc).__name__})", endpoint=path
            ) from None
        except httpx.TransportError as exc:
            self.metrics.request(path, "network_error")
            raise NetworkError(
                f"the connection to Kaphila failed during {path} ({type(exc).__name__})",
                endpoint=path,
            ) from None
        self.metrics.request(path, response.status_code)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s -> %s in %.3f s",
                method,
                path,
                response.status_code,
                time.perf_counter() - started,
            )
        return response

    @staticmethod
    def _decode(response: httpx.Response, path: str) -> Mapping[str, Any]:
        try:
            data = json.loads(response.content) if response.content else {}
        except ValueError:
            if response.status_code >= 400:
                return {"error": response.text[:200].strip() or response.reason_phrase}
            raise MalformedResponse(
                f"Kaphila {path} answered {response.status_code} with a body that is not JSON",
                endpoint=path,
            ) from None
        if not isinstance(data, dict):
            if response.status_code >= 400:
                return {"error": str(data)[:200]}
            raise MalformedResponse(
                f"Kaphila {path} answered with JSON that is not an object", endpoint=path
            )
        return data

    @staticmethod
    def _error(response: httpx.Response, path: str, data: Mapping[str, Any]) -> ApiError:
        status = response.status_code if response.status_code >= 400 else 400
        message = data.get("error") or data.get("message") or response.reason_phrase
        code = data.get("code")
        details = {k: v for k, v in data.items() if k not in ("success", "error", "code")}
        cls = _ERRORS.get(status, ApiError)
        if status == 500 and code == "ORIGINATION_FAILED":
            cls = OriginationFailed
        if cls is ApiError:
            cls = ServerError if status >= 500 else BadRequest
        return cls(
            str(message),
            status_code=status,
            code=str(code) if code is not None else None,
            endpoint=path,
            details=details,
            retry_after=_retry_after(response.headers.get("Retry-After")),
            enveloped=data.get("success") is False and "error" in data,
        )

    # -- calls -----------------------------------------------------------------------

    async def make_call(
        self,
        number: str,
        *,
        webhook_url: str | None = None,
        caller_id: str | None = None,
        use_amd: bool = False,
        voice_name: str | None = None,
        ring_timeout: int = 30,
    ) -> MakeCallReply:
        """``POST /makecall``. The numbers are checked before anything is sent."""
        options = (webhook_url, caller_id, use_amd, voice_name, ring_timeout)
        return await self.send(_placement(MakeCall, number, *options))

    async def batch_call(
        self,
        number: str,
        *,
        webhook_url: str | None = None,
        caller_id: str | None = None,
        use_amd: bool = False,
        voice_name: str | None = None,
        ring_timeout: int = 30,
    ) -> MakeCallReply:
        """``POST /batchcall``: as ``make_call``, for batch workflows."""
        options = (webhook_url, caller_id, use_amd, voice_name, ring_timeout)
        return await self.send(_placement(BatchCall, number, *options))

    async def forward_call(self, call_id: str, forward_number: str) -> ForwardReply:
        return await self.send(ForwardCall(call_id, normalize_number(forward_number)))

    async def voice(self, call_id: str, text: str, *, play_to: PlayTo = "bridge") -> PlaybackReply:
        """``POST /voice``: answered once the speech has been played."""
        return await self.send(Voice(call_id, text, play_to))

    async def play(self, call_id: str, file: str, *, play_to: PlayTo = "bridge") -> PlaybackReply:
        return await self.send(Play(call_id, file, play_to))

    async def gather(
        self,
        call_id: str,
        text: str | None = None,
        *,
        num_digits: int = 1,
        timeout: float = 10.0,
        finish_on_key: str | None = None,
        valid_digits: str | None = None,
        play_to: PlayTo = "bridge",
    ) -> GatherReply:
        """``POST /gather``; ``timeout`` in seconds. The outcome comes by webhook."""
        return await self.send(
            Gather(call_id, text, num_digits, timeout, finish_on_key, valid_digits, play_to)
        )

    async def hangup(self, call_id: str) -> HangupReply:
        return await self.send(Hangup(call_id))

    async def list_calls(self) -> CallList:
        return CallList.from_json(await self._request("GET", "/calls"))

    async def get_call(self, call_id: str) -> CallInfo:
        data = await self._request("GET", f"/calls/{call_id}")
        inner = data.get("call")
        return CallInfo.from_json(inner if isinstance(inner, dict) else data)

    # -- recordings ------------------------------------------------------------------

    async def list_recordings(self) -> RecordingList:
        return RecordingList.from_json(await self._request("GET", "/recordings"))

    async def get_recordings(self, call_id: str) -> RecordingList:
        return RecordingList.from_json(await self._request("GET", f"/recordings/{call_id}"))

    async def download_recording(self, call_id: str) -> bytes:
        return await self._download(f"/recordings/{call_id}/download")

    async def download_recording_file(self, filename: str) -> bytes:
        return await self._download(f"/recordings/file/{filename}/download")

    async def stop_recording(self, call_id: str) -> StopRecordingReply:
        return await self.send(StopRecording(call_id))

    async def _download(self, path: str) -> bytes:
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._raw("GET", path)
                if response.status_code >= 400:
                    raise self._error(response, path, self._decode(response, path))
                return response.content
            except KaphilaError as error:
                delay = self.retry.delay(attempt, error)
                if not self.retry.retryable(error, repeatable=True) or delay is None:
                    raise
                self.metrics.retry(path)
                await anyio.sleep(delay)

    # -- account ---------------------------------------------------------------------

    async def health(self) -> Health:
        return Health.from_json(await self._request("GET", "/health"))

    async def me(self) -> AccountInfo:
        return AccountInfo.from_json(await self._request("GET", "/api/me"))

    async def sync_rate_limit(self) -> int | None:
        """Read the account's hourly limit from ``/api/me`` and apply it here."""
        info = await self.me()
        if info.rate_limit is not None and self.limiter is not None:
            self.limiter.set_limit(info.rate_limit)
        return info.rate_limit

    async def call_logs(
        self, *, page: int = 1, page_size: int = 20, status: str | None = None
    ) -> CallLogPage:
        body: dict[str, Any] = {"page": page, "page_size": page_size}
        if status is not None:
            body["status"] = status
        return CallLogPage.from_json(await self._request("POST", "/api/call-logs", json_body=body))

    async def analytics(self, *, days: int = 7) -> Analytics:
        return Analytics.from_json(
            await self._request("POST", "/api/analytics", json_body={"days": days})
        )

    async def dashboard(self) -> Dashboard:
        return Dashboard.from_json(await self._request("POST", "/api/dashboard", json_body={}))
