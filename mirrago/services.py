"""Everything a front end needs, built once: the backend, the client, the ledger and the runner.

The CLI opens one `Services` per command; the app caches one per server process
(`st.cache_resource`) and shares it between sessions. `close()` stops the runner, then the
backend (the embedded sandbox, when one was started).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mirrago.backend import Backend, start_backend
from mirrago.client import MirragoClient
from mirrago.config import Settings, load_settings
from mirrago.datadir import purge_inputs
from mirrago.ledger import Ledger
from mirrago.runner import Runner, RunnerTuning


@dataclass
class Services:
    settings: Settings
    backend: Backend
    client: MirragoClient
    ledger: Ledger
    runner: Runner
    _stop_backend: Callable[[], None] = field(default=lambda: None, repr=False)
    _closed: bool = field(default=False, repr=False)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop the runner (jobs in progress stay recorded for next time), then the backend."""
        if self._closed:
            return
        self._closed = True
        try:
            self.runner.stop()
        finally:
            try:
                self.client.close()
                self.ledger.close()
            finally:
                self._stop_backend()

    def __enter__(self) -> Services:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_services(
    settings: Settings | None = None, *, start_runner: bool = True, **runner_tuning: Any
) -> Services:
    """Build the services for `settings` (default: `load_settings()`).

    Starts the embedded sandbox when no MIRRAGO_BASE_URL is configured. The client has no
    retries of its own (`max_retries=0`): the runner reschedules and adapts instead, and sees
    every rate-limit answer. `runner_tuning` goes to `Runner` (e.g. `batch_ids=()` to work only
    on batches this process enqueues). Raises `MirragoError`s (`LedgerError` included) with
    one-line messages; nothing is left running when it does.
    """
    settings = settings or load_settings()
    if settings.retention_days:
        purge_inputs(settings.data_dir, settings.retention_days)
    running = start_backend(settings)
    client = ledger = None
    try:
        client = MirragoClient.from_backend(
            running.backend, max_retries=0, outbound=settings.client_outbound
        )
        ledger = Ledger.open(settings)
        tuning = RunnerTuning(**runner_tuning)
        runner = Runner(ledger, client, settings.data_dir, tuning, backend=running.backend.key)
        if start_runner:
            runner.start()
    except BaseException:
        if client is not None:
            client.close()
        if ledger is not None:
            ledger.close()
        running.stop()
        raise
    return Services(settings, running.backend, client, ledger, runner, running.stop)
