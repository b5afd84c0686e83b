"""Running the sandbox: embedded in a background thread on a free loopback port (tests, the CLI,
the app), or in the foreground for `mirrago sandbox`.

    with embedded(SandboxConfig(latency=0.1)) as sandbox:
        requests.post(f"{sandbox.base_url}/oauth/token", json={...})
"""

from __future__ import annotations

import http.client
import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import uvicorn

from mirrago.sandbox.app import create_app
from mirrago.sandbox.config import SandboxConfig
from mirrago.sandbox.engine import Engine

__all__ = [
    "EmbeddedSandbox",
    "Engine",
    "SandboxConfig",
    "embedded",
    "openapi_json",
    "serve",
    "start_embedded",
]

START_TIMEOUT = 15.0
DEMO_SECRET = SandboxConfig().client_secret


class _Server(uvicorn.Server):
    """uvicorn's server, minus re-raising Ctrl-C after a clean shutdown: `serve` returns."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        captured = getattr(self, "_captured_signals", None)
        if isinstance(captured, list):
            captured.clear()


def _bind(host: str, port: int) -> socket.socket:
    """Bind the listening socket ourselves: with port 0 the OS picks a free port, and nothing can
    take it between choosing and serving."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def _base_url(host: str, sock: socket.socket) -> str:
    port = sock.getsockname()[1]
    shown = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def _server(engine: Engine, *, access_log: bool = False) -> _Server:
    config = uvicorn.Config(
        create_app(engine),
        log_config=None,  # leave the host program's logging alone
        log_level="warning",
        access_log=access_log,
        lifespan="off",
        timeout_graceful_shutdown=1,
        server_header=False,
    )
    return _Server(config)


class EmbeddedSandbox:
    """A sandbox serving from a daemon thread. `engine` is live: change `engine.config` at will."""

    def __init__(
        self, engine: Engine, server: uvicorn.Server, thread: threading.Thread, base_url: str
    ):
        self.engine = engine
        self.base_url = base_url
        self._server = server
        self._thread = thread
        self._stopped = False
        self._stop_lock = threading.Lock()

    @property
    def client_id(self) -> str:
        return self.engine.config.client_id

    @property
    def client_secret(self) -> str:
        return self.engine.config.client_secret

    def stop(self) -> None:
        """Stop serving, stop the workers and delete the results. Idempotent, about 0.3 s."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        self._server.should_exit = True
        self._thread.join(3.0)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(2.0)
        self.engine.stop()

    def __enter__(self) -> EmbeddedSandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmbeddedSandbox(base_url={self.base_url!r}, client_id={self.client_id!r})"


def _wait_until_answering(base_url: str, server: uvicorn.Server, thread: threading.Thread) -> None:
    host, _, port = base_url.removeprefix("http://").rpartition(":")
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if not thread.is_alive():
            raise RuntimeError("The Mirrago sandbox failed to start (its server thread ended).")
        if server.started:
            connection = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=2)
            try:
                connection.request("GET", "/health")
                if connection.getresponse().status == 200:
                    return
            except OSError:
                pass
            finally:
                connection.close()
        time.sleep(0.01)
    raise RuntimeError(f"The Mirrago sandbox did not answer within {START_TIMEOUT:g} s.")


def start_embedded(
    config: SandboxConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> EmbeddedSandbox:
    """Start a sandbox in a daemon thread and return once it answers HTTP. Call `stop()` after."""
    engine = Engine(config)
    try:
        sock = _bind(host, port)
    except OSError:
        engine.stop()
        raise
    server = _server(engine)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="mirrago-sandbox-http", daemon=True
    )
    thread.start()
    sandbox = EmbeddedSandbox(engine, server, thread, _base_url(host, sock))
    try:
        _wait_until_answering(sandbox.base_url, server, thread)
    except BaseException:
        sandbox.stop()
        sock.close()
        raise
    return sandbox


@contextmanager
def embedded(config: SandboxConfig | None = None, **kw: Any) -> Iterator[EmbeddedSandbox]:
    """`start_embedded` as a context manager: the sandbox stops on exit."""
    sandbox = start_embedded(config, **kw)
    try:
        yield sandbox
    finally:
        sandbox.stop()


def serve(config: SandboxConfig, host: str, port: int) -> None:
    """Run the sandbox in the foreground until Ctrl-C (or SIGTERM), announcing it on stderr."""
    engine = Engine(config)
    try:
        sock = _bind(host, port)
    except OSError:
        engine.stop()
        raise
    base_url = _base_url(host, sock)
    secret = config.client_secret if config.client_secret == DEMO_SECRET else "(as configured)"
    print(
        f"Mirrago sandbox at {base_url}  (API docs: {base_url}/docs)\n"
        f"  client id:     {config.client_id}\n"
        f"  client secret: {secret}\n"
        f"  samples:       {base_url}/samples\n"
        f"Use it with MIRRAGO_BASE_URL={base_url}. Press Ctrl-C to stop.",
        file=sys.stderr,
        flush=True,
    )
    try:
        _server(engine).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        engine.stop()
        sock.close()
        print("Mirrago sandbox stopped.", file=sys.stderr, flush=True)


def openapi_json(config: SandboxConfig | None = None) -> str:
    """The sandbox's OpenAPI document as JSON text, without starting a server."""
    engine = Engine(config)
    try:
        return json.dumps(create_app(engine).openapi(), indent=2)
    finally:
        engine.stop()
