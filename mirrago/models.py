"""Typed results of the Mirrago API, the normalised job status, and the error classes.

Everything the client returns or raises is defined here, so that the runner, the CLI and the
pages can depend on these types without importing the HTTP client itself.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


class JobStatus(enum.Enum):
    """A job's status at the server, normalised from the API's many spellings."""

    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self is not JobStatus.IN_PROGRESS

    @classmethod
    def from_api(cls, raw: object) -> JobStatus:
        """Map a raw API status to the enum (API-NOTES.md lists the spellings).

        An unknown or missing status counts as in progress: the caller's deadline ends the wait.
        """
        text = str(raw or "").strip().lower()
        if text in _COMPLETED_SPELLINGS:
            return cls.COMPLETED
        if text in _FAILED_SPELLINGS:
            return cls.FAILED
        return cls.IN_PROGRESS


_COMPLETED_SPELLINGS = frozenset(
    {"completed", "completedc", "complete", "succeeded", "success", "done"}
)
_FAILED_SPELLINGS = frozenset({"failed", "error", "errored", "failure"})


def parse_api_time(value: object) -> datetime | None:
    """Parse a timestamp from the API into an aware UTC datetime.

    The API sends ISO times with no zone (`2026-01-24T13:07:14.211044`). We read a naive time
    as UTC: this is the one place where that assumption is made. Unparseable values give None.
    """
    if not value or not isinstance(value, str):
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def error_text(error_msg: object) -> str | None:
    """Extract a human message from the API's `error_msg` (`{}`, `{"error": "…"}` or a string)."""
    if error_msg is None:
        return None
    if isinstance(error_msg, str):
        return error_msg.strip() or None
    if isinstance(error_msg, dict):
        for key in ("error", "message", "detail", "msg"):
            value = error_msg.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
        parts = [str(v) for v in error_msg.values() if v not in (None, "", {}, [])]
        return "; ".join(parts) or None
    return str(error_msg) or None


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


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Submission:
    """The server's answer to `generate-image`: a job that now exists and has been charged."""

    job_id: str
    status: JobStatus
    raw_status: str
    business_id: str | None
    username: str | None
    cloth_id: str | None
    credits_before: int | None
    created_at: datetime | None

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> Submission:
        raw = str(body.get("status") or "")
        return cls(
            job_id=str(body["job_id"]),
            status=JobStatus.from_api(raw),
            raw_status=raw,
            business_id=_text(body.get("business_id")),
            username=_text(body.get("username")),
            cloth_id=_text(body.get("cloth_id")),
            credits_before=_int(body.get("credits_before")),
            created_at=parse_api_time(body.get("created_at")),
        )


@dataclass(frozen=True)
class Job:
    """A job as `GET /v1/mirrago/job/{job_id}` reports it."""

    job_id: str
    status: JobStatus
    raw_status: str
    cloth_id: str | None
    created_at: datetime | None
    result_url: str | None
    error_message: str | None
    generated_image_key: str | None = None

    @property
    def is_final(self) -> bool:
        return self.status.is_final

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> Job:
        raw = str(body.get("status") or "")
        return cls(
            job_id=str(body["job_id"]),
            status=JobStatus.from_api(raw),
            raw_status=raw,
            cloth_id=_text(body.get("cloth_id")),
            created_at=parse_api_time(body.get("created_at")),
            result_url=_text(body.get("result_url")),
            error_message=error_text(body.get("error_msg")),
            generated_image_key=_text(body.get("generated_image_key")),
        )


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


class ConnectionError(MirragoError):  # noqa: A001 - the API's own name, as in openai-python
    """The service could not be reached (DNS, refused, reset)."""


class TimeoutError(ConnectionError):  # noqa: A001 - openai's APITimeoutError(APIConnectionError)
    """A request, or a wait for a job, ran past its deadline: a kind of connection error."""


class SubmissionUncertainError(MirragoError):
    """A submission reached the server but its outcome is unknown (timeout after sending, or a
    plain 5xx). The job may exist and may have spent a credit: it must not be resubmitted
    blindly. `cause` is the underlying error."""

    def __init__(self, message: str, *, cause: MirragoError | None = None):
        super().__init__(message, status_code=getattr(cause, "status_code", None))
        self.cause = cause


class ImageError(MirragoError):
    """An input image is unusable (empty, not an image, truncated, too large, a bomb)."""
