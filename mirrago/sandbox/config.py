"""How the sandbox behaves (`SandboxConfig`) and how it refuses a request (`SandboxError`):
the two things the engine and its parts (tokens, accounts, limits, inputs) share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class SandboxConfig:
    """How the sandbox behaves. Every field may be changed at run time via `engine.config`."""

    client_id: str = "demo-client"
    client_secret: str = field(default="demo-secret", repr=False)
    token_ttl: float = 3600
    starting_credits: int = 1000
    workers: int = 4
    # Seconds a worker spends on a job: fixed, or (low, high) drawn uniformly for each job in
    # the order workers take them (reproducible with `seed`). When each job was created,
    # started and finished: `SandboxEngine.job_times()`.
    latency: float | tuple[float, float] = (2.0, 5.0)
    rate_limit: float | None = None  # submits per second per client; None = unlimited
    rate_burst: int | None = None  # submits the bucket holds; None: max(1, rate_limit)
    strict_reference: bool = False  # statuses and errors exactly as mirrago-api.md shows them
    submit_fail_rate: float = 0.0  # plain 500 on generate-image, no job created
    read_fail_rate: float = 0.0  # 500 on GET job
    job_fail_rate: float = 0.0  # the job ends failed with a message (credit refunded)
    fitted: bool = True  # pose-guided fitting; False: the plain placement (for load tests)
    answer_delay: float = 0.0  # seconds generate-image holds its answer after creating the job
    seed: int | None = None
    max_upload_bytes: int = 15 * 1024 * 1024
    # Fetch image URLs on loopback and private networks too (tests, local use). Off, only
    # public addresses are fetched; the sandbox's own /samples/ URLs are always served.
    allow_private_urls: bool = False
    # A SQLite file holding the balances: every sandbox started on one file spends from one
    # account per client (the app's and the CLI's embedded sandboxes on one data dir).
    # None: this sandbox's own balances, in memory.
    credits_file: str | Path | None = None


class SandboxError(Exception):
    """A request the sandbox refuses: the HTTP status, the message, optional headers and body."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ):
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.headers = headers or {}
        self.body = body if body is not None else {"detail": message}
