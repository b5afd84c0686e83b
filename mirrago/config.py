"""The one place that reads configuration: the environment, `.env`, and `.streamlit/secrets.toml`.

Precedence, highest first: the process environment, then `.env`, then Streamlit secrets (read as
TOML directly, so this module does not import Streamlit). Names:
`MIRRAGO_BASE_URL`, `MIRRAGO_CLIENT_ID`, `MIRRAGO_CLIENT_SECRET`, `MIRRAGO_DATA_DIR`,
`MIRRAGO_DATABASE_URL`, `MIRRAGO_LOCK_BACKEND` (1: the app offers no live connection form),
`MIRRAGO_RETENTION_DAYS` (stored input photos older than that are removed; default: kept),
`MIRRAGO_SANDBOX_LATENCY` (the embedded sandbox's seconds per job: `3`, or a range `2-5`),
`MIRRAGO_ALLOW_PRIVATE_URLS` (what the app may fetch on a user's behalf beyond public addresses:
`1` for every address, or a list like `10.1.2.0/24,images.internal`; see `mirrago.outbound`),
`MIRRAGO_STAGE_IDLE_MINUTES` (minutes without a key or click before the Stage's live try-on
resets by itself; default 3, fractions allowed).

The data dir defaults to a per-user data folder (platformdirs: `~/.local/share/mirrago` on
Linux), so every command finds the same ledger from any folder; a `.mirrago/` folder in the
working directory, when present, is still used (as before).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from dotenv import dotenv_values
from platformdirs import user_data_path

from mirrago.outbound import OutboundPolicy

NAMES = (
    "MIRRAGO_BASE_URL",
    "MIRRAGO_CLIENT_ID",
    "MIRRAGO_CLIENT_SECRET",
    "MIRRAGO_DATA_DIR",
    "MIRRAGO_DATABASE_URL",
    "MIRRAGO_LOCK_BACKEND",
    "MIRRAGO_RETENTION_DAYS",
    "MIRRAGO_SANDBOX_LATENCY",
    "MIRRAGO_ALLOW_PRIVATE_URLS",
    "MIRRAGO_STAGE_IDLE_MINUTES",
)
LIVE_BASE_URL = "https://api.mirrago.com"
DEFAULT_DATA_DIR = ".mirrago"
LEDGER_FILE = "ledger.sqlite3"
STAGE_IDLE_MINUTES = 3.0


@dataclass(frozen=True)
class Settings:
    """Resolved configuration. `base_url` None means: use the embedded sandbox."""

    base_url: str | None = None
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    database_url: str | None = None
    lock_backend: bool = False
    retention_days: float | None = None
    sandbox_latency: tuple[float, float] | None = None  # None: the sandbox's own default
    # What links, previews and typed base URLs may reach besides public addresses.
    outbound: OutboundPolicy = field(default_factory=OutboundPolicy)
    # True for a base URL a user typed in the sidebar (not the admin's MIRRAGO_BASE_URL): the
    # client's connections to it then go through `outbound`.
    base_url_typed: bool = False
    # Minutes without a key or click before the Stage's live try-on resets by itself.
    stage_idle_minutes: float = STAGE_IDLE_MINUTES

    @property
    def uses_sandbox(self) -> bool:
        return not self.base_url

    @property
    def ledger_url(self) -> str:
        """The SQLAlchemy URL of the ledger: `MIRRAGO_DATABASE_URL`, else a SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / LEDGER_FILE).resolve()}"

    @property
    def client_outbound(self) -> OutboundPolicy | None:
        """The policy the API client's connections go through: for a base URL a user typed;
        None for the configured one and the embedded sandbox (both set by whoever runs the app).
        """
        return self.outbound if self.base_url_typed and self.base_url else None

    def with_connection(self, base_url: str, client_id: str, client_secret: str) -> Settings:
        """These settings with a base URL and credentials a user typed in (the sidebar)."""
        return replace(
            self,
            base_url=base_url,
            client_id=client_id,
            client_secret=client_secret,
            base_url_typed=True,
        )


def _read_secrets_toml(path: Path) -> dict[str, str]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    # Accept top-level keys and a [mirrago] table (`base_url` or `MIRRAGO_BASE_URL`).
    found: dict[str, str] = {}
    table = data.get("mirrago") if isinstance(data.get("mirrago"), dict) else {}
    for name in NAMES:
        short = name.removeprefix("MIRRAGO_").lower()
        for value in (data.get(name), table.get(name), table.get(short)):
            if isinstance(value, str | int) and str(value).strip():
                found[name] = str(value).strip()
                break
    return found


def load_settings(
    env: Mapping[str, str] | None = None,
    *,
    cwd: Path | None = None,
) -> Settings:
    """Resolve settings from `env` (default `os.environ`), `cwd/.env` and
    `cwd/.streamlit/secrets.toml`."""
    base = Path.cwd() if cwd is None else cwd
    environ = os.environ if env is None else env
    merged: dict[str, str] = {}
    merged.update(_read_secrets_toml(base / ".streamlit" / "secrets.toml"))
    dotenv_file = base / ".env"
    if dotenv_file.is_file():
        merged.update({k: v for k, v in dotenv_values(dotenv_file).items() if k in NAMES and v})
    merged.update({k: v for k, v in environ.items() if k in NAMES and v and v.strip()})

    data_dir = Path(merged.get("MIRRAGO_DATA_DIR") or _default_data_dir(base))
    if not data_dir.is_absolute():
        data_dir = base / data_dir
    return Settings(
        base_url=(merged.get("MIRRAGO_BASE_URL") or "").rstrip("/") or None,
        client_id=merged.get("MIRRAGO_CLIENT_ID"),
        client_secret=merged.get("MIRRAGO_CLIENT_SECRET"),
        data_dir=data_dir,
        database_url=merged.get("MIRRAGO_DATABASE_URL"),
        lock_backend=merged.get("MIRRAGO_LOCK_BACKEND", "").strip().lower() in ("1", "true", "yes"),
        retention_days=_days(merged.get("MIRRAGO_RETENTION_DAYS")),
        sandbox_latency=_latency(merged.get("MIRRAGO_SANDBOX_LATENCY")),
        outbound=OutboundPolicy.from_setting(merged.get("MIRRAGO_ALLOW_PRIVATE_URLS")),
        stage_idle_minutes=_days(merged.get("MIRRAGO_STAGE_IDLE_MINUTES")) or STAGE_IDLE_MINUTES,
    )


def _default_data_dir(base: Path) -> Path:
    """`.mirrago/` in the working directory when there is one, else the per-user folder."""
    local = base / DEFAULT_DATA_DIR
    return local if local.is_dir() else user_data_path("mirrago", appauthor=False)


def _latency(text: str | None) -> tuple[float, float] | None:
    """`3` or `2-5` (seconds) as a (low, high) range; anything else: the default."""
    try:
        low, _, high = (text or "").partition("-")
        bounds = (float(low), float(high or low))
    except ValueError:
        return None
    return bounds if 0 <= bounds[0] <= bounds[1] else None


def _days(text: str | None) -> float | None:
    """A positive number (days, minutes) from text; None when it is not one."""
    try:
        days = float(text) if text else None
    except ValueError:
        return None
    return days if days is not None and days > 0 else None
