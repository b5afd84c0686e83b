"""Every error Mirrago Studio raises, and the one mapping from an HTTP answer to a worded error.

The hierarchy follows openai-python's `_exceptions.py`: one base (`MirragoError`), a class per
status a caller acts on differently, and connection errors whose names shadow no builtin
(`ServiceConnectionError`, `ServiceTimeoutError`), so `except ConnectionError` anywhere in the
code means Python's own. `error_from_response` and `error_from_transport` turn a non-2xx answer
or a failed send into one of them, as replicate-python's `ReplicateError.from_response` does;
the client only sends, and raises what they return. The other parts' errors live here too
(the ledger's, a batch file's, the outbound policy's, the CLI's); the sandbox, a separate
server, keeps its own.

`str(error)` is a sentence a user can act on. No secret or token is ever part of a message: the
caller passes its secrets, and the server's words are scrubbed of them.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from mirrago.models import error_text

# requests and urllib3 load on first use: `mirrago --help` imports this module (the CLI's
# errors are here) and must stay fast.
if TYPE_CHECKING:
    import requests

    from mirrago.ledger.records import ReviewRecord

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "BatchFileError",
    "DeckError",
    "FetchError",
    "ExportError",
    "ImageError",
    "InsufficientCreditsError",
    "LedgerError",
    "LedgerUnavailableError",
    "MirragoError",
    "NotFoundError",
    "RateLimitError",
    "RefusedAddress",
    "ReviewConflict",
    "ReviewError",
    "ServerError",
    "ServiceConnectionError",
    "ServiceTimeoutError",
    "SubmissionUncertainError",
    "UncheckableInput",
    "UsageError",
    "display_url",
    "error_from_response",
    "error_from_transport",
    "missing_credentials",
    "submission_uncertain",
    "uncertain_text",
]

_RATE_LIMIT_RE = re.compile(r"rate[\s_-]?limit", re.IGNORECASE)


# --------------------------------------------------------------------- the classes


class MirragoError(Exception):
    """The base of every error Mirrago Studio raises. `str(error)` is a sentence a user can act on.

    No secret or token is ever part of the message, the body or the repr.
    """

    def __init__(self, message: str, *, status_code: int | None = None, body: object = None):
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.body = body

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status_code={self.status_code!r})"


class AuthenticationError(MirragoError):
    """401/403: the client id or secret is wrong, or the token was refused."""


class BadRequestError(MirragoError):
    """400/404/413/422: the request itself is wrong (bad image, bad URL, unknown job)."""


class NotFoundError(BadRequestError):
    """404/410: the server does not know the job (or the result) asked about."""


class InsufficientCreditsError(MirragoError):
    """402: the account has no credits left."""


class RateLimitError(MirragoError):
    """429, or a 5xx whose body speaks of a rate limit. `retry_after` is in seconds, if known."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status_code: int | None = None,
        body: object = None,
    ):
        super().__init__(message, status_code=status_code, body=body)
        self.retry_after = retry_after


class ServerError(MirragoError):
    """Any other 5xx: the service failed."""


class ServiceConnectionError(MirragoError):
    """The service could not be reached (DNS, refused, reset). openai's APIConnectionError."""


class ServiceTimeoutError(ServiceConnectionError):
    """A request, or a wait for a job, ran past its deadline: a kind of connection error (as
    openai's APITimeoutError is an APIConnectionError)."""


class SubmissionUncertainError(MirragoError):
    """A submission reached the server but its outcome is unknown (timeout after sending, or a
    plain 5xx). The job may exist and may have spent a credit: it must not be resubmitted
    blindly. `cause` is the underlying error."""

    def __init__(self, message: str, *, cause: MirragoError | None = None):
        super().__init__(message, status_code=getattr(cause, "status_code", None))
        self.cause = cause


class ImageError(MirragoError):
    """An input image is unusable (empty, not an image, truncated, too large, a bomb)."""


# ------------------------------------------------ the other parts' errors (one home for all)


class LedgerError(MirragoError):
    """The ledger cannot be opened or used (unreachable database, a schema from the future)."""


class LedgerUnavailableError(LedgerError):
    """The database did not answer (locked past its busy timeout, down, restarting, the network
    to it broken). Nothing was changed; the same call may simply be made again later."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"The job ledger at {where} is unreachable ({reason}).")
        self.reason = reason


class ReviewConflict(MirragoError):
    """A verdict or an undo not applied: the row holds another verdict than the one the
    reviewer saw (`theirs`: who judged it, what and when). Nothing was changed."""

    def __init__(self, theirs: ReviewRecord) -> None:
        who = (theirs.reviewer or "Someone without a name")[:40]  # a name as typed: cut short
        when = theirs.at.strftime("%Y-%m-%d %H:%M UTC")
        super().__init__(
            f"{who} judged this result {theirs.verdict.capitalize()} at {when}, after your view "
            "of it was drawn. Keep their verdict, or give yours again to replace it."
        )
        self.theirs = theirs


class ReviewError(MirragoError):
    """A verdict that cannot be given as asked (one line, saying what to do)."""


class ExportError(MirragoError):
    """An export cannot be made (an unknown batch, say): one line saying what to do."""


class DeckError(MirragoError):
    """A Stage deck change that cannot be made (a slide from a job with no stored result)."""


class UncheckableInput(MirragoError):
    """A result or photo the quality checks cannot read; the message says which and why."""


class BatchFileError(ValueError):
    """The input file cannot be read at all (missing, a folder, unreadable)."""


class FetchError(Exception):
    """The URL cannot be fetched; the message says why, in words for the person who sent it."""


class RefusedAddress(FetchError):
    """The URL's host is, or resolves to, an address the policy does not allow. The message is
    the policy's one refusal; `host` and `address` are for logs, never for the user."""

    def __init__(self, message: str, host: str, address: str):
        super().__init__(message)
        self.host = host
        self.address = address


class UsageError(Exception):
    """Bad command-line input: exit 2, nothing submitted."""


# --------------------------------------------------------------------- builders


def missing_credentials(base_url: str) -> AuthenticationError:
    """The one message for a live server configured without its client id or secret."""
    return AuthenticationError(
        f"MIRRAGO_BASE_URL is set to {base_url}, but the client id or secret "
        "(MIRRAGO_CLIENT_ID, MIRRAGO_CLIENT_SECRET) is missing: set both (env, .env or "
        ".streamlit/secrets.toml), or unset MIRRAGO_BASE_URL to use the local sandbox."
    )


def uncertain_text(reason: str) -> str:
    """What a row whose submission may or may not have created a job says (the one wording)."""
    return (
        "The server may or may not have created this job (it may have spent a credit): "
        f"{reason}; check the account's jobs before trying again."
    )


def submission_uncertain(reason: str, cause: MirragoError) -> SubmissionUncertainError:
    """The error for a job-creating request whose outcome is unknown, `reason` in a few words."""
    return SubmissionUncertainError(uncertain_text(reason), cause=cause)


def display_url(url: str) -> str:
    """A URL fit for messages and logs: no query string (signed URLs carry credentials)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else parts.path


# --------------------------------------------------------------------- response -> error


def error_from_response(
    response: requests.Response,
    *,
    idempotent: bool = True,
    secrets: Iterable[str | None] = (),
) -> MirragoError:
    """The typed, worded error for a non-2xx `response`, with the server's message in a few
    words (any of `secrets` it echoes replaced by `***`).

    A plain 5xx to a request that is not `idempotent` (one that creates a job) becomes a
    `SubmissionUncertainError`: the job may exist.
    """
    status = response.status_code
    raw_text = response.text or ""
    detail = _scrub(_server_message(response, raw_text), secrets).rstrip(".")
    body = _json_or_none(response)
    if 300 <= status < 400:
        # We never follow redirects of POSTs (requests would turn them into GETs).
        where = display_url(urljoin(response.url, response.headers.get("Location", "")))
        return BadRequestError(
            f"The Mirrago server answered {status}, redirecting to {where}: set "
            "MIRRAGO_BASE_URL to the address it points at.",
            status_code=status,
        )
    if status == 429 or (status >= 500 and _RATE_LIMIT_RE.search(raw_text)):
        retry_after = _retry_after(response.headers.get("Retry-After"))
        wait_hint = f"wait {retry_after:g} s" if retry_after is not None else "wait a moment"
        return RateLimitError(
            f"The Mirrago server is rate-limiting requests ({status}: {detail}); "
            f"{wait_hint} and try again.",
            retry_after=retry_after,
            status_code=status,
            body=body,
        )
    if 400 <= status < 500:
        return _client_error(status, detail, body)
    error = ServerError(
        f"The Mirrago server failed ({status}: {detail}). "
        "Try again in a moment; if it keeps happening, check the service status.",
        status_code=status,
        body=body,
    )
    if idempotent:
        return error
    return submission_uncertain(f"the server answered {status} ({detail})", error)


def _client_error(status: int, detail: str, body: Any) -> MirragoError:
    """A 4xx other than 429: the credentials, the credits or the request itself."""
    if status in (401, 403):
        return AuthenticationError(
            f"The Mirrago server refused the request ({status}: {detail}). "
            "Check MIRRAGO_CLIENT_ID and MIRRAGO_CLIENT_SECRET and the account's access.",
            status_code=status,
            body=body,
        )
    if status == 402:
        return InsufficientCreditsError(
            f"The Mirrago account has no credits left ({status}: {detail}). "
            "Top up the account before submitting more jobs.",
            status_code=status,
            body=body,
        )
    hint = " Use a smaller image." if status == 413 else ""
    kind = NotFoundError if status in (404, 410) else BadRequestError
    return kind(
        f"The Mirrago server rejected the request ({status}): {_sentence(detail)}{hint}",
        status_code=status,
        body=body,
    )


def _scrub(text: str, secrets: Iterable[str | None]) -> str:
    """Remove the secret and the token, should a server ever echo them."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, "***")
    return text


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


# --------------------------------------------------------------------- transport -> error


def error_from_transport(
    exc: requests.RequestException, *, host: str, idempotent: bool, read_timeout: float
) -> MirragoError:
    """The worded error for a request to `host` that got no answer (refused, reset, timed out).

    A request that is not `idempotent` and may have reached the server (a read timeout, a
    connection broken after sending) gives a `SubmissionUncertainError`.
    """
    import requests
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError

    reason = _root_reason(exc)
    never_sent = isinstance(reason, ConnectTimeoutError | NewConnectionError)
    timed_out = isinstance(reason, ReadTimeoutError) or isinstance(exc, requests.ReadTimeout)
    if isinstance(reason, ConnectTimeoutError) and not isinstance(reason, NewConnectionError):
        return ServiceTimeoutError(
            f"Connecting to the Mirrago server at {host} timed out. "
            "Check MIRRAGO_BASE_URL and your network."
        )
    if timed_out:
        timeout = ServiceTimeoutError(
            f"The Mirrago server at {host} did not answer within {read_timeout:g} s. "
            "Try again in a moment; if it keeps happening, check the service status."
        )
        if idempotent:
            return timeout
        return submission_uncertain(f"no answer within {read_timeout:g} s", timeout)
    if isinstance(exc, requests.ConnectionError):
        error = ServiceConnectionError(
            f"Could not reach the Mirrago server at {host}: {_describe(reason)}. "
            "Check MIRRAGO_BASE_URL and your network."
        )
        if idempotent or never_sent:
            return error
        return submission_uncertain(
            f"the connection broke after the request was sent ({_describe(reason)})", error
        )
    return ServiceConnectionError(
        f"The request to the Mirrago server at {host} failed ({type(exc).__name__}). "
        "Check MIRRAGO_BASE_URL and your network."
    )


def _root_reason(exc: BaseException) -> BaseException | None:
    """The urllib3 error inside a requests exception (through MaxRetryError)."""
    from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, ReadTimeoutError

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
