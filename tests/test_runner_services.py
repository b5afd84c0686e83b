"""`open_services`: the backend, client, ledger and runner built together, and closed together."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import requests

from mirrago.config import Settings
from mirrago.ledger import JobInput, JobState, LedgerError
from mirrago.samples import garments, persons
from mirrago.services import open_services


def _sandbox_threads() -> int:
    return sum(1 for t in threading.enumerate() if "sandbox" in t.name.lower() and t.is_alive())


def test_open_services_runs_a_job_on_the_embedded_sandbox_and_closes_it_all(
    tmp_path: Path,
) -> None:
    services = open_services(Settings(data_dir=tmp_path / "data"))
    try:
        assert services.backend.is_sandbox and services.runner.running
        job = JobInput(str(persons()[0].path), str(garments()[0].path))
        batch_id = services.runner.enqueue([job], name="services", source="test")[0].batch_id
        assert services.runner.wait(batch_id, timeout=60)[JobState.COMPLETED] == 1
        assert (tmp_path / "data" / "ledger.sqlite3").is_file()
        assert services.client.token_requests == 1
    finally:
        services.close()
    assert not services.runner.running
    with pytest.raises(requests.ConnectionError):
        requests.get(services.backend.base_url + "/health", timeout=2)
    services.close()  # twice is harmless


def test_open_services_without_starting_the_runner(tmp_path: Path) -> None:
    with open_services(Settings(data_dir=tmp_path / "data"), start_runner=False) as services:
        assert not services.runner.running
        assert services.ledger.counts() == {state: 0 for state in JobState}


def test_a_ledger_that_cannot_open_stops_the_sandbox_again(tmp_path: Path) -> None:
    before = _sandbox_threads()
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url="postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2",
    )
    with pytest.raises(LedgerError):
        open_services(settings)
    assert _sandbox_threads() <= before
