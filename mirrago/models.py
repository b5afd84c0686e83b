"""Typed results of the Mirrago API and the normalised job status.

Everything the client returns is defined here (what it raises is in `mirrago.errors`), so that
the runner, the CLI and the pages can depend on these types without importing the HTTP client.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# What one try-on costs: every accepted generate request spends one credit (refunded when the
# job fails at the server). Every figure of credits uses this one number.
CREDITS_PER_TRY_ON = 1


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
