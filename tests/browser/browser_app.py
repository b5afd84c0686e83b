"""Starting and stopping the app for browser tests: `streamlit run app.py` on a free port, on
the embedded sandbox with a temporary data dir (modelled on Streamlit's own
`e2e_playwright/conftest.py`: headless, wait for `/_stcore/health`)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]
START_TIMEOUT = 120.0
VIEWPORT = {"width": 1440, "height": 900}


@dataclass
class AppServer:
    url: str
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


# The servers running now: a failing browser test shows the end of their logs (conftest.py),
# so a failure in CI, where no artifact survives, still says what the server saw.
RUNNING: list[AppServer] = []


def log_tails(lines: int = 40) -> str:
    parts = []
    for server in RUNNING:
        code = server.process.poll()
        state = "running" if code is None else f"exited {code}"
        tail = "\n".join(server.log().splitlines()[-lines:])
        parts.append(f"--- {server.url} ({state}), last {lines} log lines:\n{tail}")
    return "\n".join(parts)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(server: AppServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"streamlit exited with {server.process.returncode}:\n{server.log()}")
        try:
            if requests.get(f"{server.url}/_stcore/health", timeout=2).text.strip() == "ok":
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    pytest.fail(f"streamlit was not healthy after {START_TIMEOUT:.0f} s:\n{server.log()}")


def start_app(
    workdir: Path,
    extra_env: dict[str, str] | None = None,
    *,
    port: int | None = None,
    secrets_toml: str | None = None,
) -> AppServer:
    """`streamlit run app.py` from `workdir`, which holds only a copy of `.streamlit/config.toml`
    (and `secrets_toml`, when given): no developer's `.env` or `secrets.toml` can leak into the
    test. `port`: when the secrets must name the app's URL before it starts (sign-in)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / ".streamlit").mkdir(exist_ok=True)
    shutil.copy(REPO / ".streamlit" / "config.toml", workdir / ".streamlit" / "config.toml")
    if secrets_toml is not None:
        (workdir / ".streamlit" / "secrets.toml").write_text(secrets_toml)
    data_dir = workdir / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIRRAGO_")}
    env.update({"MIRRAGO_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"})
    # The "live endpoints" the sidebar connects to in these tests are sandboxes on loopback.
    env["MIRRAGO_ALLOW_PRIVATE_URLS"] = "127.0.0.1"
    env.update(extra_env or {})
    port = port or free_port()
    log_path = workdir / "streamlit.log"
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(REPO / "app.py"),
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    server = AppServer(f"http://127.0.0.1:{port}", data_dir, log_path, process)
    RUNNING.append(server)
    _wait_healthy(server)
    return server


def stop_app(server: AppServer) -> None:
    if server in RUNNING:
        RUNNING.remove(server)
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
