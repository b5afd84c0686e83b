"""The sandbox's state and work behind the routes: clients and tokens, credits, the rate limit,
the job queue and its workers, fault injection, callbacks and the counters tests read.

The HTTP layer (app.py) only turns requests into calls here and `SandboxError`s into responses.
"""

from __future__ import annotations

import hmac
import io
import logging
import math
import queue
import random
import re
import secrets
import shutil
import tempfile
import threading
import time
import uuid
import weakref
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import requests
from PIL import Image

from mirrago.sandbox import render
from mirrago.sandbox.accounts import AccountError, open_accounts
from mirrago.sandbox.urlguard import FetchError, check_url, fetch_public, public_session

log = logging.getLogger("mirrago.sandbox")

# Formats the sandbox accepts, and the extension each gets in a cloth_id.
IMAGE_FORMATS = {"JPEG": "jpeg", "PNG": "png", "WEBP": "webp"}
MAX_PIXELS = 50_000_000  # refuse decompression bombs before decoding them
URL_TIMEOUT = (3.05, 10.0)  # (connect, read) seconds for fetching image URLs
CALLBACK_TIMEOUT = 3.0
CALLBACK_DELAYS = (0.0, 0.3, 1.0)  # one try after each delay
SAMPLES_DIR = Path(__file__).parents[1] / "samples"
SAMPLE_KINDS = ("persons", "garments")
SAMPLE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.(?:jpe?g|png|webp)$", re.IGNORECASE)
# Background values: keep-words, the named choices, true (white) and #rgb[a]/#rrggbb[aa].
BACKGROUND_PATTERN = (
    r"^\s*(original|false|none|keep|no|0|white|studio|true"
    r"|#([0-9A-Fa-f]{3}|[0-9A-Fa-f]{4}|[0-9A-Fa-f]{6}|[0-9A-Fa-f]{8}))?\s*$"
)
RESULT_NAME = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.png$")
STAT_NAMES = (
    "token_requests",
    "token_failures",
    "generate_requests",
    "jobs_created",
    "jobs_completed",
    "jobs_failed",
    "job_reads",
    "unauthorized",
    "bad_requests",
    "insufficient_credits",
    "rate_limited",
    "submit_faults",
    "read_faults",
    "callbacks_sent",
    "callback_failures",
)
# What a job reports under strict_reference: only the reference's own spellings.
STRICT_STATUS = {
    "pending": "pending",
    "queued": "queued",
    "processing": "queued",
    "completed": "completedc",
    "failed": "failed",
}


@dataclass
class SandboxConfig:
    """How the sandbox behaves. Every field may be changed at run time via `engine.config`."""

    client_id: str = "demo-client"
    client_secret: str = field(default="demo-secret", repr=False)
    token_ttl: float = 3600
    starting_credits: int = 1000
    workers: int = 4
    latency: float | tuple[float, float] = (2.0, 5.0)  # seconds per job, fixed or a random range
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


@dataclass(frozen=True)
class ImageSource:
    """One side of a submission as the request gave it: uploaded bytes or a URL, and the field."""

    field: str
    data: bytes | None = None
    url: str | None = None


@dataclass(frozen=True)
class SubmitRequest:
    """A generate-image request, parsed from multipart or JSON but not yet validated."""

    target: ImageSource | None
    garment: ImageSource | None
    background: object = None
    username: str | None = None
    callback_url: str | None = None


@dataclass
class _Job:
    job_id: str
    client_id: str
    cloth_id: str
    created_at: str
    background: str | None
    callback_url: str | None
    base_url: str
    inputs: tuple[Path, Path] | None
    status: str = "pending"
    error: str | None = None

    @property
    def result_name(self) -> str:
        return f"{self.job_id}.png"


def _now_text() -> str:
    """A naive UTC timestamp with microseconds, as the reference shows them."""
    return datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def _seeded(seed: int | None, purpose: str) -> random.Random:
    return random.Random(None if seed is None else f"{seed}:{purpose}")


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def sample_files(kind: str) -> list[Path]:
    """The shipped sample images of `kind` (persons or garments), by name."""
    folder = SAMPLES_DIR / kind
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and SAMPLE_NAME.match(p.name))


def sample_path(kind: str, name: str) -> Path | None:
    """The sample file, or None; names are matched against a strict pattern and the resolved
    path must stay inside the samples folder, so no traversal gets out."""
    if kind not in SAMPLE_KINDS or not SAMPLE_NAME.match(name):
        return None
    folder = (SAMPLES_DIR / kind).resolve()
    path = (folder / name).resolve()
    if path.parent != folder or not path.is_file():
        return None
    return path


def _own_sample_route(url: str, base_url: str) -> tuple[str, str] | None:
    """(kind, name) when `url` is this sandbox's own `/samples/<kind>/<name>` URL."""
    parts, base = urlsplit(url.strip()), urlsplit(base_url)
    if (parts.scheme, parts.netloc.lower()) != (base.scheme, base.netloc.lower()):
        return None
    segments = unquote(parts.path).split("/")
    if len(segments) != 4 or segments[:2] != ["", "samples"]:
        return None
    return segments[2], segments[3]


class Engine:
    """Everything the sandbox knows and does; thread-safe. Call `stop()` when done."""

    def __init__(self, config: SandboxConfig | None = None):
        self.config = config or SandboxConfig()
        self._lock = threading.Lock()
        # Separate streams, so that with a seed the faults drawn for requests (in request order)
        # repeat regardless of how the workers' draws interleave with them.
        self._request_rng = _seeded(self.config.seed, "requests")
        self._job_rng = _seeded(self.config.seed, "jobs")
        self._extra_clients: dict[str, str] = {}
        self._tokens: dict[str, tuple[str, float]] = {}
        self._accounts = open_accounts(self.config.credits_file)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._jobs: dict[str, _Job] = {}
        self._stats: Counter[str] = Counter()
        self._queue: queue.Queue[str | None] = queue.Queue()  # None wakes a worker to stop
        self._stopping = threading.Event()
        self._workers_running = 0
        self._threads: list[threading.Thread] = []
        self._dir = Path(tempfile.mkdtemp(prefix="mirrago-sandbox-"))
        # Also removed at interpreter exit, for hosts that never call stop() (a cached resource).
        self._remove_dir = weakref.finalize(self, shutil.rmtree, self._dir, ignore_errors=True)
        self._callbacks = ThreadPoolExecutor(4, thread_name_prefix="mirrago-sandbox-callback")
        # The clock of token lifetimes and the rate limit's bucket: tests replace it to make
        # expiry and refills exact instead of racing real time.
        self.clock: Callable[[], float] = time.monotonic
        self._ensure_workers()

    # ---- clients, tokens, credits -------------------------------------------------------------

    def add_client(self, client_id: str, client_secret: str) -> None:
        """Register another API client (for tests of isolation between clients)."""
        with self._lock:
            self._extra_clients[client_id] = client_secret

    def issue_token(self, client_id: str | None, client_secret: str | None) -> dict[str, Any]:
        """The OAuth client-credentials grant: a fresh opaque token, or 401."""
        self._count("token_requests")
        if not client_id or not client_secret or not self._secret_matches(client_id, client_secret):
            self._count("token_failures")
            raise SandboxError(
                401,
                "Invalid client credentials: check the client id and secret.",
                body={"error": "invalid_client", "detail": "Invalid client credentials."},
            )
        ttl = float(self.config.token_ttl)
        token = secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock:
            self._tokens = {t: v for t, v in self._tokens.items() if v[1] > now}
            self._tokens[token] = (client_id, now + ttl)
        expires_in: float = int(ttl) if ttl == int(ttl) else round(ttl, 3)
        return {"access_token": token, "expires_in": expires_in, "token_type": "Bearer"}

    def _secret_matches(self, client_id: str, client_secret: str) -> bool:
        with self._lock:
            expected = self._extra_clients.get(client_id)
        if client_id == self.config.client_id:
            expected = self.config.client_secret
        return expected is not None and hmac.compare_digest(
            expected.encode("utf-8"), client_secret.encode("utf-8")
        )

    def authenticate(self, token: str | None) -> str:
        """The client id the bearer token belongs to; 401 if it is missing, unknown or expired."""
        with self._lock:
            entry = self._tokens.get(token or "")
        if entry is None or entry[1] <= self.clock():
            self._count("unauthorized")
            why = "Missing access token" if not token else "Invalid or expired access token"
            raise SandboxError(
                401,
                f"{why}: get one from POST /oauth/token and send it as "
                "'Authorization: Bearer <access_token>'.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return entry[0]

    def credits(self, client_id: str) -> int:
        """The client's current credit balance."""
        return self._accounts.balance(client_id, self.config.starting_credits)

    def set_credits(self, client_id: str, balance: int) -> None:
        """Set a client's balance (demos of a low or empty account)."""
        self._accounts.set(client_id, balance)

    def _debit(self, client_id: str) -> int:
        """Charge one credit; the balance before. 402 when there is none, 500 when the
        credits file cannot be written (nothing charged)."""
        try:
            credits_before, charged = self._accounts.debit(
                client_id, self.config.starting_credits
            )
        except AccountError as error:
            log.error("sandbox credits not charged: %s", error)
            raise SandboxError(500, "Internal Server Error") from None
        if not charged:
            self._count("insufficient_credits")
            raise SandboxError(
                402,
                f"Insufficient credits: the account has {credits_before} credits left, and "
                "each try-on costs 1. No job was created; top up the account to continue.",
            )
        return credits_before

    def _refund(self, client_id: str) -> None:
        try:
            self._accounts.refund(client_id, self.config.starting_credits)
        except AccountError as error:
            log.error("sandbox credit not refunded: %s", error)

    # ---- submissions -----------------------------------------------------------------------------

    def admit_submission(self, token: str | None) -> str:
        """Count, authenticate and rate-limit a generate-image request; return its client id."""
        self._count("generate_requests")
        client_id = self.authenticate(token)
        wait = self._take_rate_token(client_id)
        if wait is not None:
            self._count("rate_limited")
            raise self._rate_limit_error(wait)
        return client_id

    def _take_rate_token(self, client_id: str) -> float | None:
        """A token bucket per client holding up to `rate_burst` (or max(1, rate)) submits.
        Returns None when the submit may go ahead, else the seconds until it may."""
        rate = self.config.rate_limit
        if not rate or rate <= 0:
            return None
        burst = self.config.rate_burst
        capacity = float(burst) if burst else max(1.0, float(rate))
        now = self.clock()
        with self._lock:
            tokens, updated = self._buckets.get(client_id, (capacity, now))
            tokens = min(capacity, tokens + (now - updated) * rate)
            if tokens >= 1.0:
                self._buckets[client_id] = (tokens - 1.0, now)
                return None
            self._buckets[client_id] = (tokens, now)
            return (1.0 - tokens) / rate

    def _rate_limit_error(self, wait: float) -> SandboxError:
        if self.config.strict_reference:
            # The reference's "500 Rate Limit": no Retry-After, as a server to the letter sends.
            return SandboxError(500, "Rate Limit: too many requests.")
        seconds = max(1, math.ceil(wait))  # Retry-After takes whole seconds
        message = (
            f"Rate limit exceeded: at most {self.config.rate_limit:g} submissions per second. "
            f"Retry after {seconds} s."
        )
        return SandboxError(
            429,
            message,
            headers={"Retry-After": str(seconds)},
            body={"detail": message, "retry_after": round(wait, 3)},
        )

    def check_upload_size(self, field_name: str, size: int | None) -> None:
        """413 when an uploaded file is over `max_upload_bytes` (counted as a bad request)."""
        try:
            self._check_size(field_name, size)
        except SandboxError:
            self._count("bad_requests")
            raise

    def _check_size(self, field_name: str, size: int | None) -> None:
        limit = self.config.max_upload_bytes
        if size is not None and size > limit:
            raise SandboxError(
                413,
                f"{field_name} is {_megabytes(size)}, over the {_megabytes(limit)} upload limit: "
                "send a smaller or more compressed image.",
            )

    def submit(self, client_id: str, request: SubmitRequest, base_url: str) -> dict[str, Any]:
        """Validate a submission, charge one credit and queue the job; the reference's response.

        Raises SandboxError: 400 (missing or bad field), 413, 402 (no credits), 500 (fault).
        A refused submission creates no job and charges nothing.
        """
        try:
            target_source = self._require(request.target, "target_image")
            garment_source = self._require(request.garment, "garment_image")
            background = self._background(request.background)
            callback_url = self._callback_url(request.callback_url)
            target_data, _ = self._load_image(target_source, base_url)
            garment_data, garment_ext = self._load_image(garment_source, base_url)
        except SandboxError as error:
            if error.status_code in (400, 413):
                self._count("bad_requests")
            raise
        if self._chance(self.config.submit_fail_rate, self._request_rng):
            self._count("submit_faults")
            raise SandboxError(500, "Internal Server Error")

        job_id = str(uuid.uuid4())
        business_id = client_id
        cloth_id = f"business/{business_id}/clothes/{uuid.uuid4()}.{garment_ext}"
        username = (request.username or "").strip()[:200] or f"TEMP{uuid.uuid4()}"
        credits_before = self._debit(client_id)
        try:
            inputs = self._store_inputs(job_id, target_data, garment_data)
        except OSError:  # the sandbox is stopping, or the disk is full: no job, no charge
            self._refund(client_id)
            raise SandboxError(500, "Internal Server Error") from None
        job = _Job(
            job_id=job_id,
            client_id=client_id,
            cloth_id=cloth_id,
            created_at=_now_text(),
            background=background,
            callback_url=callback_url,
            base_url=base_url.rstrip("/"),
            inputs=inputs,
        )
        response = {
            "job_id": job_id,
            "status": "pending",
            "business_id": business_id,
            "username": username,
            "cloth_id": cloth_id,
            "credits_before": credits_before,
            "created_at": job.created_at,
        }
        with self._lock:
            self._jobs[job_id] = job
            self._stats["jobs_created"] += 1
            job.status = "queued"
        self._ensure_workers()
        self._queue.put(job_id)
        if self.config.answer_delay > 0:  # a slow network: the job exists, its answer lags
            self._stopping.wait(self.config.answer_delay)
        return response

    @staticmethod
    def _require(source: ImageSource | None, field_name: str) -> ImageSource:
        if source is None or (source.data is None and not source.url):
            raise SandboxError(
                400,
                f"Missing {field_name}: send it as a file ({field_name}) or as a URL "
                f"({field_name}_url).",
            )
        return source

    @staticmethod
    def check_background(value: object) -> None:
        """400 unless `value` is absent, a boolean or a known background (BACKGROUND_PATTERN)."""
        if value is None or isinstance(value, bool):
            return
        if not isinstance(value, str) or not re.match(BACKGROUND_PATTERN, value):
            shown = str(value)[:40]
            raise SandboxError(
                400,
                f"Unknown background {shown!r}: use original (or false), white, studio, "
                "or a colour such as #f0f0f0.",
            )

    @classmethod
    def _background(cls, value: object) -> str | None:
        cls.check_background(value)
        try:
            return render.parse_background(value)
        except ValueError as error:
            raise SandboxError(400, str(error)) from None

    @staticmethod
    def _callback_url(value: str | None) -> str | None:
        text = (value or "").strip()
        if not text:
            return None
        try:
            parts = urlsplit(text)
        except ValueError:
            raise SandboxError(400, "Invalid callback_url: it must be an http(s) URL.") from None
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SandboxError(400, "Invalid callback_url: it must be an http(s) URL.")
        return text

    def _load_image(self, source: ImageSource, base_url: str) -> tuple[bytes, str]:
        """The image bytes of one side, fetched if it is a URL, checked to decode as an image.
        Returns the bytes and the extension of their format."""
        if source.data is not None:
            self._check_size(source.field, len(source.data))
            data = source.data
        else:
            data = self._fetch(source.field, str(source.url), base_url)
        return data, self._check_image(source.field, data)

    def _fetch(self, field_name: str, url: str, base_url: str) -> bytes:
        """The bytes at `url`: the sandbox's own sample URLs are read from disk (they are on
        loopback), anything else is fetched from a public address (see urlguard)."""
        try:
            own = _own_sample_route(url, base_url)
        except ValueError:
            raise SandboxError(
                400, f"Invalid image URL ({field_name}): it must be an http:// or https:// URL."
            ) from None
        if own is not None:
            path = sample_path(*own)
            if path is None:
                raise SandboxError(
                    400, f"Invalid image URL ({field_name}): there is no such sample image."
                )
            return path.read_bytes()
        try:
            return fetch_public(
                url.strip(),
                allow_private=self.config.allow_private_urls,
                max_bytes=self.config.max_upload_bytes,
                timeout=URL_TIMEOUT,
                headers={"User-Agent": "mirrago-sandbox"},
            )
        except FetchError as error:
            raise SandboxError(400, f"Invalid image URL ({field_name}): {error}") from None

    @staticmethod
    def _check_image(field_name: str, data: bytes) -> str:
        """Decode enough of the image to know it is a whole JPEG/PNG/WebP; return its extension."""
        what = f"{field_name} is not a usable image"
        if not data:
            raise SandboxError(400, f"{what}: it is empty. Send a JPEG or PNG file.")
        try:
            with Image.open(io.BytesIO(data)) as image:
                if image.format not in IMAGE_FORMATS:
                    raise SandboxError(
                        400, f"{what}: {image.format} is not accepted. Send a JPEG or PNG file."
                    )
                if image.width * image.height > MAX_PIXELS:
                    raise SandboxError(
                        400, f"{what}: {image.width}x{image.height} pixels is too large."
                    )
                image.draft("RGB", (1024, 1024))
                image.load()
                return IMAGE_FORMATS[image.format]
        except (Image.DecompressionBombError, OSError, SyntaxError, ValueError):
            raise SandboxError(
                400, f"{what}: it does not decode as JPEG or PNG (it may be truncated)."
            ) from None

    def _store_inputs(self, job_id: str, target: bytes, garment: bytes) -> tuple[Path, Path]:
        # Inputs wait on disk rather than in memory: hundreds of queued jobs stay cheap.
        paths = (self._dir / f"{job_id}-target", self._dir / f"{job_id}-garment")
        paths[0].write_bytes(target)
        paths[1].write_bytes(garment)
        return paths

    # ---- reading jobs and results -------------------------------------------------------------

    def read_job(self, token: str | None, job_id: str, base_url: str) -> dict[str, Any]:
        """`GET /v1/mirrago/job/{job_id}` for the token's client: the job, 401, 404 or a fault."""
        self._count("job_reads")
        client_id = self.authenticate(token)
        if self._chance(self.config.read_fail_rate, self._request_rng):
            self._count("read_faults")
            raise SandboxError(500, "Internal Server Error")
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.client_id != client_id:
                raise SandboxError(404, f"Job {job_id[:64]} not found.")
            return self._view(job, base_url.rstrip("/"))

    def _view(self, job: _Job, base_url: str) -> dict[str, Any]:
        """The job in the reference's shape (call with the lock held)."""
        done = job.status == "completed"
        failed = job.status == "failed"
        status = STRICT_STATUS[job.status] if self.config.strict_reference else job.status
        if done:
            result_url: str | None = f"{base_url}/results/{job.result_name}"
        else:
            result_url = "" if failed else None
        return {
            "job_id": job.job_id,
            "cloth_id": job.cloth_id,
            "cloth_img_url": "",
            "status": status,
            "created_at": job.created_at,
            "generated_image_key": f"/results/{job.result_name}" if done else "",
            "result_url": result_url,
            "error_msg": {"error": job.error or "something went wrong"} if failed else {},
        }

    def result_path(self, name: str) -> Path | None:
        """The rendered PNG called `name` (`<job_id>.png`), if that job has completed."""
        if not RESULT_NAME.match(name):
            return None
        with self._lock:
            job = self._jobs.get(name.removesuffix(".png"))
            if job is None or job.status != "completed":
                return None
        path = self._dir / name
        return path if path.is_file() else None

    # ---- workers -----------------------------------------------------------------------------

    def _ensure_workers(self) -> None:
        """Start workers up to `config.workers` (the count may be raised at run time)."""
        with self._lock:
            missing = max(1, int(self.config.workers)) - self._workers_running
            self._workers_running += max(0, missing)
            self._threads = [thread for thread in self._threads if thread.is_alive()]
            for _ in range(missing):
                thread = threading.Thread(
                    target=self._work, name="mirrago-sandbox-worker", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def _retire_if_surplus(self) -> bool:
        with self._lock:
            if self._workers_running > max(1, int(self.config.workers)):
                self._workers_running -= 1
                return True
            return False

    def _work(self) -> None:
        while not self._stopping.is_set() and not self._retire_if_surplus():
            try:
                job_id = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if job_id is not None:
                self._process(job_id)

    def _latency(self) -> float:
        latency = self.config.latency
        if isinstance(latency, tuple | list):
            low, high = float(latency[0]), float(latency[1])
            with self._lock:
                return self._job_rng.uniform(min(low, high), max(low, high))
        return max(0.0, float(latency))

    def _chance(self, rate: float, rng: random.Random) -> bool:
        if rate <= 0:
            return False
        with self._lock:
            return rng.random() < rate

    def _process(self, job_id: str) -> None:
        with self._lock:
            job = self._jobs[job_id]
            job.status = "processing"
        started = time.monotonic()
        latency = self._latency()
        error = None
        try:
            if self._chance(self.config.job_fail_rate, self._job_rng):
                error = "Try-on generation failed: the garment could not be fitted to the person."
            else:
                self._render(job)
        except Exception as exc:  # a job failure must never kill a worker
            log.warning("sandbox job %s failed to render: %s", job_id, exc)
            error = "Try-on generation failed: the images could not be rendered."
        finally:
            self._drop_inputs(job)
        self._stopping.wait(max(0.0, latency - (time.monotonic() - started)))
        self._finish(job, error)

    def _render(self, job: _Job) -> None:
        assert job.inputs is not None
        with Image.open(job.inputs[0]) as person, Image.open(job.inputs[1]) as garment:
            person.draft("RGB", (render.MAX_SIDE, render.MAX_SIDE))
            result = render.compose(person, garment, job.background, fitted=self.config.fitted)
        result.save(self._dir / job.result_name, format="PNG", compress_level=3)

    def _drop_inputs(self, job: _Job) -> None:
        for path in job.inputs or ():
            path.unlink(missing_ok=True)
        job.inputs = None

    def _finish(self, job: _Job, error: str | None) -> None:
        if error is not None:  # refunded before it reads as failed: whoever sees it sees both
            self._refund(job.client_id)
        with self._lock:
            if error is None:
                job.status = "completed"
                self._stats["jobs_completed"] += 1
            else:
                job.status, job.error = "failed", error
                self._stats["jobs_failed"] += 1
            payload = self._view(job, job.base_url) if job.callback_url else None
        if payload is not None and not self._stopping.is_set():
            try:
                self._callbacks.submit(self._deliver_callback, str(job.callback_url), payload)
            except RuntimeError:  # the pool is shut down: the sandbox is stopping
                pass

    def _deliver_callback(self, url: str, payload: dict[str, Any]) -> None:
        """POST the final job to its callback_url: best effort, a few tries with backoff."""
        allow_private = self.config.allow_private_urls
        for delay in CALLBACK_DELAYS:
            if self._stopping.wait(delay):
                return
            try:
                check_url(url, allow_private)  # callbacks reach public addresses only, too
                with public_session(allow_private) as session:
                    response = session.post(
                        url, json=payload, timeout=CALLBACK_TIMEOUT, allow_redirects=False
                    )
                if response.ok:
                    self._count("callbacks_sent")
                    return
            except FetchError:
                break
            except requests.RequestException:
                pass
        self._count("callback_failures")
        log.info("sandbox callback for job %s was not delivered", payload.get("job_id"))

    # ---- counters and shutdown ---------------------------------------------------------------

    def _count(self, name: str) -> None:
        with self._lock:
            self._stats[name] += 1

    def stats(self) -> dict[str, int]:
        """A snapshot of the counters (every name in STAT_NAMES, zero if it never happened)."""
        with self._lock:
            return {name: self._stats[name] for name in STAT_NAMES}

    def stop(self) -> None:
        """Stop the workers and callbacks and delete the results; safe to call twice."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._callbacks.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + 2.0
        with self._lock:
            threads = list(self._threads)
        for _ in threads:
            self._queue.put(None)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._remove_dir()
