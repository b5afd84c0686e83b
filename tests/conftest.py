"""Shared fixtures: Mirrago sandboxes on loopback with fast job latencies, a data directory, the
ledger (on SQLite, and on PostgreSQL too for tests marked `every_database`), runners, the app
through AppTest, and small drawn test images (a person on a plain backdrop, a red shirt on a
near-white one)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from PIL import Image, ImageDraw
from support import APP, FAST_RUNNER, RUN_TIMEOUT, SECRET_ENV, postgres_schema, postgres_server_url

from mirrago.client import MirragoClient
from mirrago.ledger import Ledger
from mirrago.runner import Runner
from mirrago.sandbox.server import EmbeddedSandbox, SandboxConfig, start_embedded

if TYPE_CHECKING:
    from streamlit.testing.v1 import AppTest

# Small latencies keep the suite fast while jobs still pass through queued and processing.
# Test servers for images and callbacks listen on loopback: allow the sandbox to reach them.
FAST_SANDBOX: dict[str, Any] = {
    "latency": (0.05, 0.2),
    "workers": 4,
    "seed": 1,
    "allow_private_urls": True,
}

PERSON_BACKDROP = (70, 110, 160)
GARMENT_BACKDROP = (250, 250, 250)
GARMENT_RED = (200, 30, 30)


class ManualClock:
    """A clock that moves only when the test says so: put it in a sandbox's engine
    (`sandbox.engine.clock = clock`) to make token expiry and rate-limit refills exact."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def manual_clock() -> ManualClock:
    """A `ManualClock` at an arbitrary start."""
    return ManualClock()


@pytest.fixture
def make_sandbox() -> Iterator[Callable[..., EmbeddedSandbox]]:
    """A factory: `make_sandbox(**SandboxConfig fields)` starts a fast sandbox with those
    overrides; every sandbox it started is stopped at teardown."""
    started: list[EmbeddedSandbox] = []

    def start(**overrides: Any) -> EmbeddedSandbox:
        sandbox = start_embedded(SandboxConfig(**{**FAST_SANDBOX, **overrides}))
        started.append(sandbox)
        return sandbox

    yield start
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def sandbox(make_sandbox: Callable[..., EmbeddedSandbox]) -> EmbeddedSandbox:
    """A running sandbox: latency 0.05–0.2 s, 4 workers, seed 1, demo credentials."""
    return make_sandbox()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean working directory with no configuration but a private data dir."""
    monkeypatch.chdir(tmp_path)
    for name in SECRET_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MIRRAGO_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh data dir for the app, and no configuration from the developer's env, .env or
    secrets. Afterwards the app's cached services (runner, embedded sandbox) are stopped and
    its cached figures dropped."""
    for name in (*SECRET_ENV, "MIRRAGO_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "data"
    monkeypatch.setenv("MIRRAGO_DATA_DIR", str(path))
    monkeypatch.chdir(tmp_path)
    yield path
    import streamlit as st  # here: most tests never load Streamlit

    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture
def app(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    """The app through AppTest after its first run, on the embedded sandbox and a fresh data
    dir; sandboxes posing as live endpoints on loopback are allowed."""
    from streamlit.testing.v1 import AppTest  # here: most tests never load Streamlit

    monkeypatch.setenv("MIRRAGO_ALLOW_PRIVATE_URLS", "127.0.0.1")
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


DATABASES = ["sqlite", "postgres"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked `every_database` runs once per database its ledger can live in."""
    if "ledger_url" in metafunc.fixturenames and metafunc.definition.get_closest_marker(
        "every_database"
    ):
        metafunc.parametrize("ledger_url", DATABASES, indirect=True)


@pytest.fixture
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to a fresh, empty ledger database: a SQLite file, or (for the `postgres` case of a
    test marked `every_database`) a schema of its own on the test PostgreSQL server, dropped
    afterwards."""
    database = getattr(request, "param", "sqlite")
    if database == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
        return
    with postgres_schema(postgres_server_url()) as url:
        yield url


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    """A fresh ledger at `ledger_url`, closed afterwards."""
    opened = Ledger(ledger_url)
    yield opened
    opened.close()


@pytest.fixture
def app_ledger(data_dir: Path) -> Iterator[Ledger]:
    """The ledger the app opens in its data dir (see `data_dir`), for a test to seed and read."""
    opened = Ledger(f"sqlite:///{data_dir / 'ledger.sqlite3'}")
    yield opened
    opened.close()


@pytest.fixture
def make_runner(ledger: Ledger, tmp_path: Path) -> Iterator[Callable[..., Runner]]:
    """`make_runner(sandbox, client=None, **tuning)`: a runner on the test ledger (stopped at
    teardown); its client has no retries of its own, as `open_services` builds it. At teardown,
    no sandbox created more jobs than the ledger has rows: nothing was submitted twice."""
    made: list[tuple[Runner, MirragoClient, EmbeddedSandbox]] = []

    def make(sandbox: EmbeddedSandbox, client: MirragoClient | None = None, **tuning: Any):
        client = client or MirragoClient.from_backend(sandbox, max_retries=0)
        runner = Runner(ledger, client, tmp_path / "data", **{**FAST_RUNNER, **tuning})
        made.append((runner, client, sandbox))
        return runner

    yield make
    for runner, client, _ in made:
        runner.stop(timeout=5)
        client.close()
    rows = len(ledger.jobs())
    for sandbox in {id(s): s for _, _, s in made}.values():
        assert sandbox.engine.stats()["jobs_created"] <= rows


@pytest.fixture
def tmp_data_dir(tmp_path: Path) -> Path:
    """An empty directory to use as MIRRAGO_DATA_DIR."""
    path = tmp_path / "mirrago-data"
    path.mkdir()
    return path


def draw_person(size: tuple[int, int] = (480, 640)) -> Image.Image:
    """A stylised person (head, neck, torso in grey) on a plain blue backdrop."""
    width, height = size
    image = Image.new("RGB", size, PERSON_BACKDROP)
    draw = ImageDraw.Draw(image)
    skin = (224, 182, 150)
    draw.ellipse((width * 0.38, height * 0.06, width * 0.62, height * 0.28), fill=skin)
    draw.rectangle((width * 0.46, height * 0.26, width * 0.54, height * 0.32), fill=skin)
    draw.rounded_rectangle(
        (width * 0.24, height * 0.30, width * 0.76, height * 1.02),
        radius=width // 8,
        fill=(60, 60, 66),
    )
    return image


def draw_garment(size: tuple[int, int] = (400, 440)) -> Image.Image:
    """A red T-shirt with a yellow chest print, product-shot style on a near-white backdrop."""
    width, height = size

    def at(x: float, y: float) -> tuple[float, float]:
        return (x * width, y * height)

    image = Image.new("RGB", size, GARMENT_BACKDROP)
    draw = ImageDraw.Draw(image)
    outline = [
        at(0.3, 0.08),
        at(0.7, 0.08),
        at(0.95, 0.3),
        at(0.8, 0.4),
        at(0.78, 0.95),
        at(0.22, 0.95),
        at(0.2, 0.4),
        at(0.05, 0.3),
    ]
    draw.polygon(outline, fill=GARMENT_RED)
    draw.ellipse((*at(0.4, 0.04), *at(0.6, 0.14)), fill=GARMENT_BACKDROP)  # the neck opening
    draw.rectangle((*at(0.38, 0.35), *at(0.62, 0.5)), fill=(240, 200, 40))
    return image


def encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture
def person_jpeg() -> bytes:
    """`draw_person()` as JPEG bytes."""
    return encode(draw_person(), "JPEG")


@pytest.fixture
def garment_png() -> bytes:
    """`draw_garment()` as PNG bytes (opaque: its backdrop has to be removed)."""
    return encode(draw_garment(), "PNG")


# --------------------------------------------------------------------------- quality checks

# Three real sandbox renders whose defects the checks' tests use: an illustrated person in a
# striped tee, a photo in a Fair Isle sweater, another photo in a floral dress.
TRIAGE_PAIRS = (
    ("studio-ana", "striped-tee"),
    ("astronaut", "green-sweater"),
    ("grace-hopper", "floral-dress"),
)


@pytest.fixture(scope="session")
def triage_cases(tmp_path_factory: pytest.TempPathFactory) -> list:
    """The checks' test set made once per session from `TRIAGE_PAIRS`: good renders and each
    defect kind (`mirrago.triage.testset.Case`s, files in a temporary folder)."""
    from mirrago.samples import find
    from mirrago.triage.testset import good_renders, write_cases

    pairs = [(find("person", p), find("garment", g)) for p, g in TRIAGE_PAIRS]
    return write_cases(good_renders(pairs), tmp_path_factory.mktemp("triage-cases"))
