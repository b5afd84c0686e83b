"""The thin, typed HTTP client for the Mirrago API: token, generate, job, wait, download.

One `requests.Session` per client, an explicit (connect, read) timeout on every call, and one
retry policy, decided by method in `_request` (as replicate-python does):

- Idempotent requests (GET, and the token POST, which creates nothing) are retried on
  connection errors, timeouts, 429 and 500/502/503/504, up to `max_retries` times, waiting
  `mirrago.backoff.backoff` (capped, jittered, with a floor, honouring `Retry-After`).
- `generate` (a POST that creates a job and spends a credit) is never retried here. A timeout
  after sending, a connection broken after sending, or a plain 5xx raise
  `SubmissionUncertainError`; a rate limit raises `RateLimitError`. The runner decides what
  to do next (it owns retrying jobs).
- A 401 on an API call fetches one new token and retries once.

A client for a base URL a user typed (the sidebar's connection) is given an `outbound` policy:
its token request, API calls and result downloads then connect only where the policy allows,
each connection pinned to the address checked (see `mirrago.outbound`).

Errors are the classes of `mirrago.errors`, which also words them from an answer or a failed
send. The client sends bytes and URLs only: turning paths, file objects and images into uploads
is `mirrago.images.upload_for`'s job. No secret or token appears in any message, repr or log line.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter

from mirrago import __version__
from mirrago.backoff import backoff
from mirrago.errors import (
    AuthenticationError,
    BadRequestError,
    ImageError,
    MirragoError,
    RateLimitError,
    ServerError,
    ServiceConnectionError,
    ServiceTimeoutError,
    display_url,
    error_from_response,
    error_from_transport,
    missing_credentials,
    submission_uncertain,
)
from mirrago.models import Job, Submission
from mirrago.outbound import OutboundPolicy, RefusedAddress

if TYPE_CHECKING:
    from mirrago.backend import Backend


log = logging.getLogger("mirrago.client")

TOKEN_PATH = "/oauth/token"
GENERATE_PATH = "/v1/mirrago/generate-image"
JOB_PATH = "/v1/mirrago/job/{job_id}"

MAX_UPLOAD_BYTES = 25 * 1024 * 1024
MAX_DOWNLOAD_BYTES = 25 * 1024 * 1024
TOKEN_MARGIN_MAX = 60.0  # refresh a token this long before it expires (or 10% of its life)
DEFAULT_TOKEN_TTL = 3600.0  # when a token response gives no usable expires_in
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
QUEUED_STATUSES = frozenset({"pending", "queued"})


@dataclass
class _CachedToken:
    value: str = field(repr=False)
    expires_at: float  # time.monotonic() after which we fetch a new one

    @property
    def fresh(self) -> bool:
        return time.monotonic() < self.expires_at


class MirragoClient:
    """A client for one Mirrago server and one set of credentials. Thread-safe.

    `timeout` is the read timeout of each HTTP call in seconds (the connect timeout is the
    smaller of it and 10 s). `max_retries`, `backoff_factor`, `backoff_max`, `poll_interval`,
    `poll_max` and `max_upload_bytes` tune the retry, polling and upload policies (see the
    module docstring); the defaults suit the live API, tests shrink them. `outbound`: the
    policy every connection goes through (for a base URL a user typed); None connects anywhere.
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
        poll_interval: float = 0.5,
        poll_max: float = 5.0,
        max_upload_bytes: int = MAX_UPLOAD_BYTES,
        outbound: OutboundPolicy | None = None,
    ) -> None:
        parts = urlsplit(str(base_url or "").strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ServiceConnectionError(
                f"The Mirrago server address {base_url!r} is not an http(s) URL: "
                "check MIRRAGO_BASE_URL."
            )
        if not client_id or not client_secret:
            raise missing_credentials(str(base_url))
        self.base_url = str(base_url).strip().rstrip("/")
        self.client_id = client_id
        self._client_secret = client_secret
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.backoff_factor = backoff_factor
        self.backoff_max = backoff_max
        self.poll_interval = poll_interval
        self.poll_max = poll_max
        self.max_upload_bytes = max_upload_bytes
        self.token_requests = 0  # token requests this client made (the tests count them)
        self._token: _CachedToken | None = None
        self._token_lock = threading.Lock()
        self.closed = False
        self.outbound = outbound
        self._session = self._build_session()
        self._submit_session = self._build_session()  # job-creating POSTs: never kept alive

    # ----------------------------------------------------------------- construction

    @classmethod
    def from_backend(cls, backend: Backend, **kw: Any) -> MirragoClient:
        """A client for a `mirrago.backend.Backend` (the live API or the embedded sandbox)."""
        return cls(backend.base_url, backend.client_id, backend.client_secret, **kw)

    def _build_session(self) -> requests.Session:
        pools = {"pool_connections": 4, "pool_maxsize": 32}
        if self.outbound is not None:
            session = self.outbound.session(**pools)
        else:
            session = requests.Session()
            # No transport-level retries: `_request` is the one place that retries.
            adapter = HTTPAdapter(max_retries=0, **pools)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        session.headers["User-Agent"] = f"mirrago-studio/{__version__}"
        return session

    def close(self) -> None:
        """Close the connections and forget the secret and the token: a closed client is done."""
        self.closed = True
        with self._token_lock:
            self._token = None
        self._client_secret = ""
        self._session.close()
        self._submit_session.close()

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
            if not _refuses_credentials(error):
                raise self._not_an_api(error) from None
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

    def _not_an_api(self, error: MirragoError) -> MirragoError:
        """A token answer that is neither a token nor a refusal of the credentials (a 404, a
        405 from a web page): the address is not a Mirrago API, whatever the credentials."""
        if error.status_code is None or 300 <= error.status_code < 400:
            return error  # refused addresses and redirects say so already
        host = urlsplit(self.base_url).netloc
        return BadRequestError(
            f"{_short(host)} does not look like a Mirrago API (its token address answered "
            f"{error.status_code}). Check MIRRAGO_BASE_URL.",
            status_code=error.status_code,
        )

    # ----------------------------------------------------------------- the one request helper

    def _request(
        self,
        method: str,
        path_or_url: str,
        *,
        auth: bool = True,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send a request with auth, the 401 refresh, typed errors and the retry policy (see
        the module docstring); return a 2xx response."""
        url = self._absolute(path_or_url)
        idempotent = method in ("GET", "HEAD") or url == self.base_url + TOKEN_PATH
        retries = self.max_retries if idempotent else 0
        read_timeout = self.timeout if timeout is None else timeout
        timeouts = (min(read_timeout, 10.0), read_timeout)
        refreshed = False
        attempt = 0
        while True:
            headers: dict[str, str] = {}
            token = self._access_token() if auth else None
            if token:
                headers["Authorization"] = f"Bearer {token}"
            try:
                response = self._send(
                    method, url, idempotent, headers=headers, timeout=timeouts, **kwargs
                )
            except ServiceConnectionError as error:  # timeouts included; generate: never sent
                if attempt >= retries:
                    raise
                self._wait_to_retry(attempt, None, error)
                attempt += 1
                continue
            if response.status_code < 300:
                return response
            if response.status_code == 401 and token and not refreshed:
                refreshed = True
                response.close()
                self._forget_token(token)
                log.debug("401 on %s %s: new token, one retry", method, display_url(url))
                continue
            error = error_from_response(response, idempotent=idempotent, secrets=self._secrets())
            response.close()
            if attempt < retries and response.status_code in RETRY_STATUSES:
                retry_after = error.retry_after if isinstance(error, RateLimitError) else None
                self._wait_to_retry(attempt, retry_after, error)
                attempt += 1
                continue
            raise error

    def _wait_to_retry(self, attempt: int, retry_after: float | None, error: Exception) -> None:
        delay = backoff(
            attempt, base=self.backoff_factor, cap=self.backoff_max, retry_after=retry_after
        )
        log.debug("retry %d in %.2f s after: %s", attempt + 1, delay, error)
        time.sleep(delay)

    def _send(self, method: str, url: str, idempotent: bool, **kwargs: Any) -> requests.Response:
        """One `session.request` with transport failures mapped to Mirrago errors."""
        host = urlsplit(url).netloc
        session = self._session
        if not idempotent:
            # A job-creating POST never rides a kept-alive connection: one the server is closing
            # as idle (uvicorn after 5 s) would break it with no way to know whether the job was
            # created. A fresh connection costs a handshake; a lost answer, a credit.
            session = self._submit_session
            kwargs["headers"] = {**kwargs.get("headers", {}), "Connection": "close"}
        started = time.monotonic()
        try:
            # Redirects of GETs are followed by requests; with an `outbound` policy, each hop's
            # connection is checked by the policy as it is made.
            response = session.request(
                method, url, allow_redirects=method in ("GET", "HEAD"), **kwargs
            )
        except RefusedAddress:
            # Nothing was contacted: one message, whatever is (or is not) at that address.
            raise BadRequestError(
                f"{_short(host)} (or where it redirects) is not a public address: the app does not "
                "connect to this machine or its private network for a server typed in. Use the "
                "API's public address (the app's admin can allow internal servers)."
            ) from None
        except requests.RequestException as exc:
            raise error_from_transport(
                exc, host=host, idempotent=idempotent, read_timeout=kwargs["timeout"][1]
            ) from None
        log.debug(
            "%s %s -> %s in %.0f ms",
            method,
            display_url(url),
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        return response

    def _secrets(self) -> tuple[str | None, ...]:
        """What must never appear in a message, should a server ever echo it."""
        return (self._client_secret, self._token.value if self._token else None)

    def _absolute(self, path_or_url: str) -> str:
        if path_or_url.startswith("/") and not path_or_url.startswith("//"):
            return self.base_url + path_or_url
        return urljoin(self.base_url + "/", path_or_url)

    def _is_own_host(self, url: str) -> bool:
        return _origin(url) == _origin(self.base_url)

    # ----------------------------------------------------------------- API calls

    def generate(
        self,
        target: object,
        garment: object,
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
        from mirrago.images import upload_for  # the one place inputs become uploads

        limit = self.max_upload_bytes
        sides = [
            upload_for("target_image", target, max_bytes=limit),
            upload_for("garment_image", garment, max_bytes=limit),
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
        response = self._request("POST", GENERATE_PATH, **kwargs)
        body = _json_or_none(response)
        if not isinstance(body, dict) or not body.get("job_id"):
            cause = ServerError(
                "The Mirrago server accepted the job but its answer had no job_id.",
                status_code=response.status_code,
            )
            raise submission_uncertain("the server's answer had no job_id", cause)
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

        Polls at once, then waits `backoff` from `poll_interval` up to `poll_max` (twice that
        while the job is still pending/queued); a rate limit waits its `Retry-After`.
        `on_update(job)` is called after each poll whose raw status differs from the previous
        poll's (so also after the first poll); its exceptions propagate.
        Raises `ServiceTimeoutError` once `timeout` seconds have passed without a final status,
        and the client's errors when the job cannot be read even after retries (a 404, say).
        """
        started = time.monotonic()
        deadline = started + timeout
        polls = 0
        last_raw: str | None = None
        while True:
            remaining = deadline - time.monotonic()
            retry_after = None
            cap = self.poll_max
            try:
                job = self.job(job_id, timeout=min(self.timeout, max(remaining, 1.0)))
            except RateLimitError as error:
                retry_after = error.retry_after
            except ServiceTimeoutError:
                if time.monotonic() >= deadline:
                    break
            else:
                if on_update is not None and job.raw_status != last_raw:
                    on_update(job)
                last_raw = job.raw_status
                if job.status.is_final:
                    return job
                if job.raw_status.strip().lower() in QUEUED_STATUSES:
                    cap = self.poll_max * 2.0  # still waiting its turn: look less often
            delay = backoff(polls, base=self.poll_interval, cap=cap, retry_after=retry_after)
            polls += 1
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(delay, remaining))
        waited = time.monotonic() - started
        raise ServiceTimeoutError(
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
        shown = display_url(absolute)
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
                raise error_from_transport(
                    exc, host=urlsplit(absolute).netloc, idempotent=True, read_timeout=self.timeout
                ) from None
        data = b"".join(chunks)
        from mirrago.images import result_extension

        if result_extension(data) is None:
            raise ImageError(
                f"The result at {shown} is not an image (expected PNG, JPEG, WEBP or GIF; got "
                f"{response.headers.get('Content-Type') or 'unknown content'})."
            )
        return data

    # ----------------------------------------------------------------- inputs


# --------------------------------------------------------------------- helpers


def _refuses_credentials(error: MirragoError) -> bool:
    """401/403, or a 400: the reference makes a bad request the caller's to fix, and an OAuth
    server answers a wrong client with 400 `invalid_client` (RFC 6749, 5.2). Only other answers
    (404, 405, …) say the address is not a Mirrago API."""
    return isinstance(error, AuthenticationError) or error.status_code == 400


def _seconds(value: object, default: float) -> float:
    """A liberal number of seconds (`3600`, `"3600"`, `3600.0`), else `default`."""
    try:
        seconds = float(str(value).strip())
    except (TypeError, ValueError):
        return default
    return seconds if seconds == seconds and seconds >= 0 else default  # NaN/negative


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _short(text: str, limit: int = 60) -> str:
    """A user-typed text echoed in a message, cut short."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


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


def _form_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
