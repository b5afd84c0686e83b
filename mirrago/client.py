"""The thin, typed HTTP client for the Mirrago API: token, generate, job, wait, download.

One `requests.Session` per client, an explicit (connect, read) timeout on every call, and
urllib3's `Retry` for transport-level retries. The retry policy, in one place:

- Reads (GET) and the token request (a POST that creates nothing) are retried on connection
  errors, read errors, 429 and 500/502/503/504, up to `max_retries` times, with jittered
  exponential backoff (`backoff_factor * 2**n`, capped at `backoff_max`) that honours
  `Retry-After` (itself capped at `RETRY_AFTER_MAX`).
- `generate` (a POST that creates a job and spends a credit) is retried only when the server
  certainly did not create a job: a connection that never opened, a 429, or a 5xx whose body says
  "rate limit" (the reference's "500 Rate Limit", which urllib3 cannot see, so `_request` retries
  it with the same backoff). A timeout after sending, a broken connection after sending, or a
  plain 5xx raise `SubmissionUncertainError` and are never resubmitted.
- A 401 on an API call fetches one new token and retries once.

Errors are the classes of `mirrago.models`; problems with a local input (missing file, empty,
too large, unsupported type) raise `ImageError` before anything is sent. No secret or token
appears in any message, repr or log line.
"""

from __future__ import annotations

import email.utils
import io
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO
from urllib.parse import quote, urljoin, urlsplit

import requests
from PIL import Image
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
    ReadTimeoutError,
)
from urllib3.util.retry import Retry

from mirrago import __version__
from mirrago.models import (
    AuthenticationError,
    BadRequestError,
    ConnectionError,
    ImageError,
    InsufficientCreditsError,
    Job,
    MirragoError,
    RateLimitError,
    ServerError,
    Submission,
    SubmissionUncertainError,
    TimeoutError,
    error_text,
)

if TYPE_CHECKING:
    from mirrago.backend import Backend
    from mirrago.config import Settings

ImageInput = str | os.PathLike[str] | bytes | BinaryIO | Image.Image
"""A path, bytes, a binary file object, a PIL image, or an http(s) URL string."""

log = logging.getLogger("mirrago.client")

TOKEN_PATH = "/oauth/token"
GENERATE_PATH = "/v1/mirrago/generate-image"
JOB_PATH = "/v1/mirrago/job/{job_id}"

MAX_UPLOAD_BYTES = 25 * 1024 * 1024
MAX_DOWNLOAD_BYTES = 25 * 1024 * 1024
RETRY_AFTER_MAX = 60.0  # a server asking for longer is retried after a minute anyway
TOKEN_MARGIN_MAX = 60.0  # refresh a token this long before it expires (or 10% of its life)
DEFAULT_TOKEN_TTL = 3600.0  # when a token response gives no usable expires_in
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
QUEUED_STATUSES = frozenset({"pending", "queued"})

_RATE_LIMIT_RE = re.compile(r"rate[\s_-]?limit", re.IGNORECASE)
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (b"GIF87a", "image/gif", "gif"),
    (b"GIF89a", "image/gif", "gif"),
)
_UPLOAD_ONLY_MAGIC = (
    (b"BM", "image/bmp", "bmp"),
    (b"II*\x00", "image/tiff", "tif"),
    (b"MM\x00*", "image/tiff", "tif"),
)
_ROLE_LABELS = {"target_image": "target (person) image", "garment_image": "garment image"}


class _Retry(Retry):
    """urllib3's Retry with `Retry-After` capped, so a server cannot park a call for hours."""

    def get_retry_after(self, response: Any) -> float | None:
        value = super().get_retry_after(response)
        return None if value is None else min(value, RETRY_AFTER_MAX)


class _SubmitRetry(_Retry):
    # urllib3 would also resend on a 413 or 503 carrying Retry-After; for a job-creating POST
    # only a 429 proves that nothing was created.
    RETRY_AFTER_STATUS_CODES = frozenset({429})


@dataclass
class _CachedToken:
    value: str = field(repr=False)
    expires_at: float  # time.monotonic() after which we fetch a new one

    @property
    def fresh(self) -> bool:
        return time.monotonic() < self.expires_at


@dataclass(frozen=True)
class _Upload:
    """One side of a generate request: either a file to upload or a URL to pass."""

    field_name: str  # target_image | garment_image
    url: str | None = None
    data: bytes | None = None
    filename: str | None = None
    content_type: str | None = None


class MirragoClient:
    """A client for one Mirrago server and one set of credentials. Thread-safe.

    `timeout` is the read timeout of each HTTP call in seconds (the connect timeout is the
    smaller of it and 10 s). `max_retries`, `backoff_factor`, `backoff_max`, `poll_interval`,
    `poll_max` and `max_upload_bytes` tune the retry, polling and upload policies (see the
    module docstring); the defaults suit the live API, tests shrink them.
    """

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        backoff_factor: float = 0.5,
        backoff_max: float = 8.0,
        backoff_jitter: float = 0.3,
        poll_interval: float = 0.5,
        poll_max: float = 5.0,
        max_upload_bytes: int = MAX_UPLOAD_BYTES,
    ) -> None:
        parts = urlsplit(str(base_url or "").strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConnectionError(
                f"The Mirrago server address {base_url!r} is not an http(s) URL: "
                "check MIRRAGO_BASE_URL."
            )
        if not client_id or not client_secret:
            raise AuthenticationError(
                "The Mirrago client id or secret is empty: set MIRRAGO_CLIENT_ID and "
                "MIRRAGO_CLIENT_SECRET."
            )
        self.base_url = str(base_url).strip().rstrip("/")
        self.client_id = client_id
        self._client_secret = client_secret
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.backoff_factor = backoff_factor
        self.backoff_max = backoff_max
        self.backoff_jitter = backoff_jitter
        self.poll_interval = poll_interval
        self.poll_max = poll_max
        self.max_upload_bytes = max_upload_bytes
        self.token_requests = 0  # token requests this client made (the tests count them)
        self._token: _CachedToken | None = None
        self._token_lock = threading.Lock()
        self._session = self._build_session()

    # ----------------------------------------------------------------- construction

    @classmethod
    def from_backend(cls, backend: Backend, **kw: Any) -> MirragoClient:
        """A client for a `mirrago.backend.Backend` (the live API or the embedded sandbox)."""
        return cls(backend.base_url, backend.client_id, backend.client_secret, **kw)

    @classmethod
    def from_settings(cls, settings: Settings, **kw: Any) -> MirragoClient:
        """A client for live `mirrago.config.Settings` (for the sandbox, use `from_backend`)."""
        if not settings.base_url:
            raise ConnectionError(
                "MIRRAGO_BASE_URL is not set: set it with MIRRAGO_CLIENT_ID and "
                "MIRRAGO_CLIENT_SECRET for the live API, or open the local sandbox with "
                "mirrago.backend.open_backend()."
            )
        if not settings.client_id or not settings.client_secret:
            raise AuthenticationError(
                f"MIRRAGO_BASE_URL is set to {settings.base_url}, but MIRRAGO_CLIENT_ID or "
                "MIRRAGO_CLIENT_SECRET is missing: set both (env, .env or "
                ".streamlit/secrets.toml), or unset MIRRAGO_BASE_URL to use the local sandbox."
            )
        return cls(settings.base_url, settings.client_id, settings.client_secret, **kw)

    def _retry(
        self, cls: type[Retry], methods: frozenset[str], statuses: frozenset[int], read: int | bool
    ) -> Retry:
        return cls(
            total=None,
            connect=self.max_retries,
            read=read,
            status=self.max_retries,
            other=0,
            redirect=5,
            allowed_methods=methods,
            status_forcelist=statuses,
            backoff_factor=self.backoff_factor,
            backoff_max=self.backoff_max,
            backoff_jitter=self.backoff_jitter,
            respect_retry_after_header=True,
            raise_on_status=False,  # hand the last response back: `_error_for` types it
        )

    def _build_session(self) -> requests.Session:
        session = requests.Session()
        session.headers["User-Agent"] = f"mirrago-studio/{__version__}"

        def adapter(retry: Retry) -> HTTPAdapter:
            return HTTPAdapter(max_retries=retry, pool_connections=4, pool_maxsize=32)

        # requests picks the adapter with the longest matching prefix, so each URL gets the
        # retry policy its method allows.
        reads = adapter(
            self._retry(_Retry, frozenset({"GET", "HEAD"}), RETRY_STATUSES, self.max_retries)
        )
        session.mount("http://", reads)
        session.mount("https://", reads)
        token = adapter(self._retry(_Retry, frozenset({"POST"}), RETRY_STATUSES, self.max_retries))
        session.mount(self.base_url + TOKEN_PATH, token)
        submit = adapter(self._retry(_SubmitRetry, frozenset({"POST"}), frozenset({429}), False))
        session.mount(self.base_url + GENERATE_PATH, submit)
        return session

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> MirragoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MirragoClient(base_url={self.base_url!r}, client_id={self.client_id!r})"

    # ----------------------------------------------------------------- token

    def authenticate(self) -> None:
        """Check the credentials now by obtaining an access token (cached for later calls).

        Raises AuthenticationError when the server refuses them, or the usual connection errors.
        """
        self._access_token()

    def _access_token(self) -> str:
        """The cached token, or a new one; one fetch however many threads ask at once."""
        token = self._token
        if token is not None and token.fresh:
            return token.value
        with self._token_lock:
            token = self._token
            if token is not None and token.fresh:
                return token.value
            self._token = self._fetch_token()
            return self._token.value

    def _forget_token(self, value: str) -> None:
        # Only drop the token the failed call used: another thread may already have replaced it.
        with self._token_lock:
            if self._token is not None and self._token.value == value:
                self._token = None

    def _fetch_token(self) -> _CachedToken:
        payload = {
            "client_id": self.client_id,
            "client_secret": self._client_secret,
            "grant_type": "client_credentials",
        }
        self.token_requests += 1
        try:
            response = self._request("POST", TOKEN_PATH, auth=False, json=payload)
        except (AuthenticationError, BadRequestError) as error:
            raise AuthenticationError(
                f"The Mirrago server rejected the client id or secret ({error.status_code}). "
                "Check MIRRAGO_CLIENT_ID and MIRRAGO_CLIENT_SECRET.",
                status_code=error.status_code,
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        value = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(value, str) or not value.strip():
            raise ServerError(
                "The Mirrago server's token answer had no access_token: check MIRRAGO_BASE_URL "
                "points at the Mirrago API.",
                status_code=response.status_code,
            )
        ttl = _seconds(body.get("expires_in"), DEFAULT_TOKEN_TTL)
        # Refresh a little early so a token never expires in flight; a tiny or zero TTL still
        # gives a token usable for this one call.
        margin = min(TOKEN_MARGIN_MAX, ttl * 0.1)
        log.debug("fetched an access token (expires in %.0f s)", ttl)
        return _CachedToken(value.strip(), time.monotonic() + max(0.0, ttl - margin))

    # ----------------------------------------------------------------- the one request helper

    def _request(
        self,
        method: str,
        path_or_url: str,
        *,
        auth: bool = True,
        idempotent: bool = True,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send one request with auth, the 401 refresh and typed errors; return a 2xx response.

        `idempotent=False` (generate) turns transport failures that may have reached the server,
        and plain 5xx answers, into `SubmissionUncertainError`, and retries "rate limit" 5xx
        answers here (urllib3 cannot read bodies).
        """
        url = self._absolute(path_or_url)
        read_timeout = self.timeout if timeout is None else timeout
        timeouts = (min(read_timeout, 10.0), read_timeout)
        refreshed = False
        rate_limit_retries = 0
        while True:
            headers: dict[str, str] = {}
            token = self._access_token() if auth else None
            if token:
                headers["Authorization"] = f"Bearer {token}"
            response = self._send(
                method, url, idempotent, headers=headers, timeout=timeouts, **kwargs
            )
            if response.status_code < 300:
                return response
            if response.status_code == 401 and token and not refreshed:
                refreshed = True
                response.close()
                self._forget_token(token)
                log.debug(
                    "401 on %s %s: fetching a new token and retrying once",
                    method,
                    _display_url(url),
                )
                continue
            error, detail = self._error_for(response)
            response.close()
            if (
                isinstance(error, RateLimitError)
                and not idempotent
                and (error.status_code or 0) >= 500
                and rate_limit_retries < self.max_retries
            ):
                delay = self._backoff(rate_limit_retries, error.retry_after)
                rate_limit_retries += 1
                log.debug(
                    "rate limited (%s); retry %d in %.2f s",
                    error.status_code,
                    rate_limit_retries,
                    delay,
                )
                time.sleep(delay)
                continue
            if not idempotent and isinstance(error, ServerError):
                raise _uncertain(f"the server answered {error.status_code} ({detail})", error)
            raise error

    def _send(self, method: str, url: str, idempotent: bool, **kwargs: Any) -> requests.Response:
        """One `session.request` with transport failures mapped to Mirrago errors."""
        host = urlsplit(url).netloc
        started = time.monotonic()
        try:
            response = self._session.request(
                method, url, allow_redirects=method in ("GET", "HEAD"), **kwargs
            )
        except requests.RequestException as exc:
            raise self._transport_error(exc, host, idempotent, kwargs["timeout"][1]) from None
        log.debug(
            "%s %s -> %s in %.0f ms",
            method,
            _display_url(url),
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        return response

    def _transport_error(
        self, exc: requests.RequestException, host: str, idempotent: bool, read_timeout: float
    ) -> MirragoError:
        reason = _root_reason(exc)
        never_sent = isinstance(reason, ConnectTimeoutError | NewConnectionError)
        timed_out = isinstance(reason, ReadTimeoutError) or isinstance(exc, requests.ReadTimeout)
        if isinstance(reason, ConnectTimeoutError) and not isinstance(reason, NewConnectionError):
            return TimeoutError(
                f"Connecting to the Mirrago server at {host} timed out. "
                "Check MIRRAGO_BASE_URL and your network."
            )
        if timed_out:
            error = TimeoutError(
                f"The Mirrago server at {host} did not answer within {read_timeout:g} s. "
                "Try again in a moment; if it keeps happening, check the service status."
            )
            if idempotent:
                return error
            return _uncertain(f"no answer within {read_timeout:g} s", error)
        if isinstance(exc, requests.ConnectionError):
            error = ConnectionError(
                f"Could not reach the Mirrago server at {host}: {_describe(reason)}. "
                "Check MIRRAGO_BASE_URL and your network."
            )
            if idempotent or never_sent:
                return error
            return _uncertain(
                f"the connection broke after the request was sent ({_describe(reason)})", error
            )
        return ConnectionError(
            f"The request to the Mirrago server at {host} failed ({type(exc).__name__}). "
            "Check MIRRAGO_BASE_URL and your network."
        )

    def _error_for(self, response: requests.Response) -> tuple[MirragoError, str]:
        """The typed error for a non-2xx response, and the server's message in a few words."""
        status = response.status_code
        raw_text = response.text or ""
        detail = self._scrub(_server_message(response, raw_text)).rstrip(".")
        body = _json_or_none(response)
        if 300 <= status < 400:
            # We never follow redirects of POSTs (requests would turn them into GETs).
            where = _display_url(urljoin(response.url, response.headers.get("Location", "")))
            error: MirragoError = BadRequestError(
                f"The Mirrago server answered {status}, redirecting to {where}: set "
                "MIRRAGO_BASE_URL to the address it points at.",
                status_code=status,
            )
        elif status == 429 or (status >= 500 and _RATE_LIMIT_RE.search(raw_text)):
            retry_after = _retry_after(response.headers.get("Retry-After"))
            wait_hint = f"wait {retry_after:g} s" if retry_after is not None else "wait a moment"
            error = RateLimitError(
                f"The Mirrago server is rate-limiting requests ({status}: {detail}); "
                f"{wait_hint} and try again.",
                retry_after=retry_after,
                status_code=status,
                body=body,
            )
        elif status in (401, 403):
            error = AuthenticationError(
                f"The Mirrago server refused the request ({status}: {detail}). "
                "Check MIRRAGO_CLIENT_ID and MIRRAGO_CLIENT_SECRET and the account's access.",
                status_code=status,
                body=body,
            )
        elif status == 402:
            error = InsufficientCreditsError(
                f"The Mirrago account has no credits left ({status}: {detail}). "
                "Top up the account before submitting more jobs.",
                status_code=status,
                body=body,
            )
        elif 400 <= status < 500:
            hint = " Use a smaller image." if status == 413 else ""
            error = BadRequestError(
                f"The Mirrago server rejected the request ({status}): {_sentence(detail)}{hint}",
                status_code=status,
                body=body,
            )
        else:
            error = ServerError(
                f"The Mirrago server failed ({status}: {detail}). "
                "Try again in a moment; if it keeps happening, check the service status.",
                status_code=status,
                body=body,
            )
        return error, detail

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Seconds before retry `attempt` (0-based): Retry-After if given, else capped,
        jittered exponential backoff with a floor of `backoff_factor`."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), RETRY_AFTER_MAX)
        base = min(self.backoff_max, self.backoff_factor * (2**attempt))
        return base + random.random() * self.backoff_jitter

    def _scrub(self, text: str) -> str:
        """Remove the secret and the token, should a server ever echo them."""
        for secret in (self._client_secret, self._token.value if self._token else None):
            if secret and secret in text:
                text = text.replace(secret, "***")
        return text

    def _absolute(self, path_or_url: str) -> str:
        if path_or_url.startswith("/") and not path_or_url.startswith("//"):
            return self.base_url + path_or_url
        return urljoin(self.base_url + "/", path_or_url)

    def _is_own_host(self, url: str) -> bool:
        return _origin(url) == _origin(self.base_url)

    # ----------------------------------------------------------------- API calls

    def generate(
        self,
        target: ImageInput,
        garment: ImageInput,
        *,
        background: str | None = None,
        username: str | None = None,
        callback_url: str | None = None,
    ) -> Submission:
        """Submit a try-on job: `target` is the person, `garment` the garment.

        Each is a path, bytes, a binary file object, a PIL image, or an http(s) URL. Files go
        as multipart/form-data; two URLs go as JSON. Raises `ImageError` for an unusable local
        input (nothing is sent), the typed API errors, and `SubmissionUncertainError` when the
        server may have created the job anyway (never resubmitted).
        """
        sides = [
            self._upload_for("target_image", target),
            self._upload_for("garment_image", garment),
        ]
        options = {"background": background, "username": username, "callback_url": callback_url}
        options = {key: value for key, value in options.items() if value is not None}
        if all(side.url for side in sides):
            body: dict[str, Any] = {f"{side.field_name}_url": side.url for side in sides}
            kwargs: dict[str, Any] = {"json": {**body, **options}}
        else:
            form = {f"{side.field_name}_url": side.url for side in sides if side.url}
            form.update({key: _form_value(value) for key, value in options.items()})
            files = {
                side.field_name: (side.filename, side.data, side.content_type)
                for side in sides
                if side.data is not None
            }
            kwargs = {"data": form, "files": files}
        response = self._request("POST", GENERATE_PATH, idempotent=False, **kwargs)
        body = _json_or_none(response)
        if not isinstance(body, dict) or not body.get("job_id"):
            cause = ServerError(
                "The Mirrago server accepted the job but its answer had no job_id.",
                status_code=response.status_code,
            )
            raise _uncertain("the server's answer had no job_id", cause)
        submission = Submission.from_api(body)
        log.debug("submitted job %s (status %s)", submission.job_id, submission.raw_status)
        return submission

    def job(self, job_id: str, *, timeout: float | None = None) -> Job:
        """The job as the server reports it now (status normalised, see `models.Job`)."""
        path = JOB_PATH.format(job_id=quote(str(job_id), safe=""))
        response = self._request("GET", path, timeout=timeout)
        body = _json_or_none(response)
        if not isinstance(body, dict):
            raise ServerError(
                f"The Mirrago server answered the status request for job {job_id} with something "
                "that is not a JSON object. Check MIRRAGO_BASE_URL points at the Mirrago API.",
                status_code=response.status_code,
            )
        body.setdefault("job_id", job_id)
        if not body["job_id"]:
            body["job_id"] = job_id
        return Job.from_api(body)

    def wait(
        self,
        job_id: str,
        *,
        timeout: float,
        on_update: Callable[[Job], None] | None = None,
    ) -> Job:
        """Poll the job until it is final and return it: it may be COMPLETED or FAILED, so the
        caller must check `job.status` (and `job.error_message` on failure).

        Polls at once, then after `poll_interval` growing ×1.5 up to `poll_max`; while the job is
        still pending/queued the interval grows ×2 up to twice `poll_max`. A rate limit waits its
        `Retry-After`. `on_update(job)` is called after each poll whose raw status differs from
        the previous poll's (so also after the first poll); its exceptions propagate.
        Raises `models.TimeoutError` once `timeout` seconds have passed without a final status,
        and the client's errors when the job cannot be read even after retries (a 404, say).
        """
        started = time.monotonic()
        deadline = started + timeout
        interval = self.poll_interval
        last_raw: str | None = None
        while True:
            remaining = deadline - time.monotonic()
            delay = None
            try:
                job = self.job(job_id, timeout=min(self.timeout, max(remaining, 1.0)))
            except RateLimitError as error:
                delay = self._backoff(0, error.retry_after)
            except TimeoutError:
                if time.monotonic() >= deadline:
                    break
                delay = interval
            else:
                if on_update is not None and job.raw_status != last_raw:
                    on_update(job)
                last_raw = job.raw_status
                if job.status.is_final:
                    return job
                if job.raw_status.strip().lower() in QUEUED_STATUSES:
                    delay = interval
                    interval = min(interval * 2.0, self.poll_max * 2.0)
                else:
                    delay = interval
                    interval = min(interval * 1.5, self.poll_max)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(delay, remaining))
        waited = time.monotonic() - started
        raise TimeoutError(
            f"Job {job_id} did not finish within {timeout:g} s (waited {waited:.1f} s; last "
            f"status: {last_raw or 'unknown'}). It may still finish: check it again later with "
            "its job id."
        )

    def download(self, url: str, *, max_bytes: int = MAX_DOWNLOAD_BYTES) -> bytes:
        """Fetch a result image (a relative URL is resolved against the base URL).

        Streams and stops at `max_bytes`; checks the bytes are a PNG, JPEG, WEBP or GIF. Raises
        `ImageError` for too large or not an image. The access token is only sent to the API's
        own host, never to a foreign one (a CDN, say).
        """
        absolute = self._absolute(url)
        shown = _display_url(absolute)
        if urlsplit(absolute).scheme not in ("http", "https"):
            raise BadRequestError(f"The result URL {shown} is not an http(s) URL.")
        response = self._request("GET", absolute, auth=self._is_own_host(absolute), stream=True)
        with response:
            declared = _int_or_none(response.headers.get("Content-Length"))
            if declared is not None and declared > max_bytes:
                raise ImageError(_too_large(shown, max_bytes))
            chunks: list[bytes] = []
            size = 0
            try:
                for chunk in response.iter_content(64 * 1024):
                    size += len(chunk)
                    if size > max_bytes:
                        raise ImageError(_too_large(shown, max_bytes))
                    chunks.append(chunk)
            except requests.RequestException as exc:
                raise self._transport_error(
                    exc, urlsplit(absolute).netloc, True, self.timeout
                ) from None
        data = b"".join(chunks)
        if not _is_result_image(data):
            raise ImageError(
                f"The result at {shown} is not an image (expected PNG, JPEG, WEBP or GIF; got "
                f"{response.headers.get('Content-Type') or 'unknown content'})."
            )
        return data

    # ----------------------------------------------------------------- inputs

    def _upload_for(self, field_name: str, value: object) -> _Upload:
        """Turn one generate input into a URL or an in-memory file, checking it first."""
        label = _ROLE_LABELS[field_name]
        if isinstance(value, str) and re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", value.strip()):
            url = value.strip()
            parts = urlsplit(url)
            if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
                raise ImageError(
                    f"The {label} URL {_display_url(url)} is not an http(s) URL: give an "
                    "http(s) URL or a local file."
                )
            return _Upload(field_name, url=url)
        if isinstance(value, str | os.PathLike):
            data, filename = self._read_path(Path(value), label)
        elif isinstance(value, bytes | bytearray | memoryview):
            data, filename = bytes(value), None
        elif isinstance(value, Image.Image):
            data, filename = _encode_pil(value, label), None
        elif hasattr(value, "read"):
            data, filename = self._read_file_object(value, label), _file_object_name(value)
        else:
            raise ImageError(
                f"The {label} must be a path, bytes, a binary file, a PIL image or an http(s) "
                f"URL, not {type(value).__name__}."
            )
        if not data:
            raise ImageError(f"The {label} is empty (0 bytes): choose another image.")
        if len(data) > self.max_upload_bytes:
            raise ImageError(self._upload_too_large(label, len(data)))
        sniffed = _sniff_upload(data)
        if sniffed is not None:
            content_type, ext = sniffed
        else:
            content_type, ext = "application/octet-stream", "bin"
        return _Upload(
            field_name,
            data=data,
            filename=filename or f"{field_name}.{ext}",
            content_type=content_type,
        )

    def _read_path(self, path: Path, label: str) -> tuple[bytes, str]:
        try:
            if not path.is_file():
                what = "is a folder, not a file" if path.is_dir() else "does not exist"
                raise ImageError(f"The {label} {str(path)!r} {what}: check the path.")
            size = path.stat().st_size
            if size > self.max_upload_bytes:
                raise ImageError(self._upload_too_large(label, size))
            return path.read_bytes(), path.name
        except OSError as exc:
            raise ImageError(
                f"The {label} {str(path)!r} could not be read ({exc.strerror or exc}): "
                "check the path and its permissions."
            ) from None

    def _read_file_object(self, handle: IO[Any], label: str) -> bytes:
        data = handle.read(self.max_upload_bytes + 1)
        if isinstance(data, str):
            raise ImageError(f"The {label} file was opened in text mode: open it with 'rb'.")
        return bytes(data or b"")

    def _upload_too_large(self, label: str, size: int) -> str:
        return (
            f"The {label} is {size / 1024 / 1024:.1f} MB, over the "
            f"{self.max_upload_bytes / 1024 / 1024:g} MB upload limit: use a smaller image."
        )


# --------------------------------------------------------------------- helpers


def _uncertain(reason: str, cause: MirragoError) -> SubmissionUncertainError:
    return SubmissionUncertainError(
        f"The server may or may not have created this job (it may have spent a credit): "
        f"{reason}; check the job list before trying again.",
        cause=cause,
    )


def _seconds(value: object, default: float) -> float:
    """A liberal number of seconds (`3600`, `"3600"`, `3600.0`), else `default`."""
    try:
        seconds = float(str(value).strip())
    except (TypeError, ValueError):
        return default
    return seconds if seconds == seconds and seconds >= 0 else default  # NaN/negative


def _retry_after(value: str | None) -> float | None:
    """`Retry-After` as seconds: either a number or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _server_message(response: requests.Response, raw_text: str) -> str:
    """The server's own words about an error, short and on one line."""
    body = _json_or_none(response)
    message: str | None = None
    if isinstance(body, dict):
        for key in ("detail", "error", "message", "error_msg", "error_description"):
            message = _message_from(body.get(key))
            if message:
                break
    elif isinstance(body, str):
        message = body
    if not message:
        text = raw_text.strip()
        message = None if text.startswith("<") else text  # an HTML error page says nothing
    message = " ".join((message or response.reason or "no details").split())
    return message if len(message) <= 300 else message[:297] + "..."


def _message_from(value: object) -> str | None:
    if isinstance(value, list):  # FastAPI validation errors: [{"loc": [...], "msg": "..."}]
        parts = []
        for item in value:
            if isinstance(item, dict):
                loc = [str(p) for p in item.get("loc") or [] if p not in ("body", "query")]
                text = str(item.get("msg") or "").strip()
                parts.append(f"{loc[-1]}: {text}" if loc and text else text)
            elif item:
                parts.append(str(item))
        return "; ".join(p for p in parts if p) or None
    if isinstance(value, dict):
        return error_text(value)
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    return text or None


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?")) else text + "."


def _root_reason(exc: BaseException) -> BaseException | None:
    """The urllib3 error inside a requests exception (through MaxRetryError)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, MaxRetryError):
            return current.reason
        if isinstance(current, ConnectTimeoutError | ReadTimeoutError):
            return current
        nested = next((a for a in current.args if isinstance(a, BaseException)), None)
        current = nested or current.__cause__ or current.__context__
    return None


def _describe(reason: BaseException | None) -> str:
    """A few words on why a connection failed, without object reprs."""
    current = reason
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError) or "refused" in str(current).lower():
            return "the connection was refused"
        if "NameResolution" in type(current).__name__ or "resolve" in str(current).lower():
            return "the host name could not be resolved"
        if isinstance(current, ConnectionResetError) or "reset" in str(current).lower():
            return "the connection was reset"
        if "RemoteDisconnected" in type(current).__name__ or "aborted" in str(current).lower():
            return "the server closed the connection"
        nested = next((a for a in current.args if isinstance(a, BaseException)), None)
        current = nested or current.__cause__ or current.__context__
    return "the connection failed"


def _display_url(url: str) -> str:
    """A URL fit for messages and logs: no query string (signed URLs carry credentials)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else parts.path


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _too_large(shown: str, max_bytes: int) -> str:
    return (
        f"The result at {shown} is larger than the {max_bytes / 1024 / 1024:g} MB download "
        "limit; it was not saved."
    )


def _sniff(data: bytes, table: tuple[tuple[bytes, str, str], ...]) -> tuple[str, str] | None:
    for magic, content_type, ext in table:
        if data.startswith(magic):
            return content_type, ext
    return None


def _is_result_image(data: bytes) -> bool:
    is_webp = data.startswith(b"RIFF") and data[8:12] == b"WEBP"
    return is_webp or _sniff(data, _MAGIC) is not None


def _sniff_upload(data: bytes) -> tuple[str, str] | None:
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "image/webp", "webp"
    return _sniff(data, _MAGIC + _UPLOAD_ONLY_MAGIC)


def _encode_pil(image: Image.Image, label: str) -> bytes:
    """PNG when the image has transparency (garment cut-outs), else JPEG."""
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    buffer = io.BytesIO()
    try:
        if has_alpha:
            image.save(buffer, format="PNG")
        else:
            rgb = image if image.mode in ("RGB", "L") else image.convert("RGB")
            rgb.save(buffer, format="JPEG", quality=92)
    except (OSError, ValueError) as exc:
        raise ImageError(f"The {label} could not be encoded ({exc}): use an RGB image.") from None
    return buffer.getvalue()


def _file_object_name(handle: object) -> str | None:
    name = getattr(handle, "name", None)
    if isinstance(name, str) and name and not name.startswith("<"):
        return os.path.basename(name)
    return None


def _form_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
