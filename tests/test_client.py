"""The Mirrago client against the sandbox over real HTTP on 127.0.0.1: token, generate, job, wait,
download, errors and retries."""

from __future__ import annotations

import io
import json
import logging
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from PIL import Image

from mirrago import __version__
from mirrago.backend import Backend
from mirrago.client import MirragoClient
from mirrago.config import Settings
from mirrago.errors import (
    AuthenticationError,
    BadRequestError,
    ImageError,
    InsufficientCreditsError,
    RateLimitError,
    ServerError,
    ServiceConnectionError,
    ServiceTimeoutError,
    SubmissionUncertainError,
)
from mirrago.models import Job, JobStatus, Submission
from mirrago.sandbox.server import start_embedded

# Fast policies: the numbers differ from the live defaults, the behaviour does not.
FAST = {
    "timeout": 10.0,
    "backoff_factor": 0.05,
    "backoff_max": 0.5,
    "poll_interval": 0.05,
    "poll_max": 0.2,
}
WRONG_SECRET = "wrong-secret-8f3a1c"


def fast_client(sandbox, **overrides) -> MirragoClient:
    return MirragoClient(
        sandbox.base_url, sandbox.client_id, sandbox.client_secret, **{**FAST, **overrides}
    )


@pytest.fixture
def client(sandbox):
    with fast_client(sandbox) as made:
        yield made


def _sample_urls(sandbox, kind: str) -> list[str]:
    """The sandbox's own URLs of the shipped samples (kind: persons | garments)."""
    urls = requests.get(f"{sandbox.base_url}/samples", timeout=5).json()[kind]
    assert urls, f"the sandbox serves no {kind} samples"
    return urls


# ----------------------------------------------------------------- statuses and models


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("pending", JobStatus.IN_PROGRESS),
        ("queued", JobStatus.IN_PROGRESS),
        ("processing", JobStatus.IN_PROGRESS),
        ("completed", JobStatus.COMPLETED),
        ("completedc", JobStatus.COMPLETED),
        ("succeeded", JobStatus.COMPLETED),
        ("success", JobStatus.COMPLETED),
        ("done", JobStatus.COMPLETED),
        (" Completed ", JobStatus.COMPLETED),
        ("failed", JobStatus.FAILED),
        ("error", JobStatus.FAILED),
        ("FAILED", JobStatus.FAILED),
        ("something-new", JobStatus.IN_PROGRESS),
        ("", JobStatus.IN_PROGRESS),
        (None, JobStatus.IN_PROGRESS),
    ],
)
def test_every_status_spelling_maps_to_one_enum(raw, expected):
    assert JobStatus.from_api(raw) is expected


# The reference's three job examples, verbatim, except that "Processing" gets the closing brace
# the document forgot.
REFERENCE_PROCESSING = """{
"job_id": "82cd18eb-fd80-4292-9c40-3c31e739604c",
"cloth_id": "business/nike/clothes/6dae61c8-e73f-4799-bde0-4b17c62c1853.jpeg",
"cloth_img_url": "",
"status": "queued",
"created_at": "2026-01-24T13:07:14.096542",
"generated_image_key": "",
"result_url": null,
"error_msg": {}
}"""
REFERENCE_COMPLETED = """{
"job_id": "82cd18eb-fd80-4292-9c40-3c31e739604c",
"cloth_id": "business/nike/clothes/6dae61c8-e73f-4799-bde0-4b17c62c1853.jpeg",
"cloth_img_url": "",
"status": "completedc",
"created_at": "2026-01-24T13:07:14.096542",
"generated_image_key": "/testimage.png",
"result_url": "https://testimage.png",
"error_msg": {}
}"""
REFERENCE_FAILED = """{
"job_id": "82cd18eb-fd80-4292-9c40-3c31e739604c",
"cloth_id": "business/nike/clothes/6dae61c8-e73f-4799-bde0-4b17c62c1853.jpeg",
"cloth_img_url": "",
"status": "failed",
"created_at": "2026-01-24T13:07:14.096542",
"generated_image_key": "",
"result_url": "",
"error_msg": {"error": "something went wrong"}
}"""


def test_reference_processing_example_is_in_progress_with_no_result():
    job = Job.from_api(json.loads(REFERENCE_PROCESSING))
    assert job.status is JobStatus.IN_PROGRESS
    assert job.raw_status == "queued"
    assert job.result_url is None
    assert job.error_message is None
    assert job.created_at is not None and job.created_at.tzinfo is not None


def test_reference_completed_example_is_completed_with_its_result_url():
    job = Job.from_api(json.loads(REFERENCE_COMPLETED))
    assert job.status is JobStatus.COMPLETED
    assert job.raw_status == "completedc"
    assert job.result_url == "https://testimage.png"
    assert job.error_message is None


def test_reference_failed_example_is_failed_with_the_message_and_no_result():
    job = Job.from_api(json.loads(REFERENCE_FAILED))
    assert job.status is JobStatus.FAILED
    assert job.result_url is None
    assert job.error_message == "something went wrong"


# ----------------------------------------------------------------- construction


def test_from_backend_builds_a_working_client(sandbox):
    backend = Backend(sandbox.base_url, sandbox.client_id, sandbox.client_secret, is_sandbox=True)
    with MirragoClient.from_backend(backend, **FAST) as made:
        with pytest.raises(BadRequestError):
            made.job("no-such-job")
        assert made.token_requests == 1


def test_live_settings_without_credentials_say_which_to_set():
    from mirrago.backend import start_backend

    settings = Settings(base_url="https://api.example", client_id="id", client_secret=None)
    with pytest.raises(AuthenticationError) as caught:
        start_backend(settings)
    assert "MIRRAGO_CLIENT_SECRET" in str(caught.value)


def test_repr_shows_no_secret(sandbox):
    made = MirragoClient(sandbox.base_url, sandbox.client_id, "s3cret-value")
    assert "s3cret-value" not in repr(made)
    made.close()


# ----------------------------------------------------------------- token


def test_token_is_fetched_once_and_reused(sandbox, client, person_jpeg, garment_png):
    submission = client.generate(person_jpeg, garment_png)
    client.wait(submission.job_id, timeout=10)
    for _ in range(5):
        client.job(submission.job_id)

    assert client.token_requests == 1
    assert sandbox.engine.stats()["token_requests"] == 1


def test_token_is_refreshed_after_it_expires(make_sandbox, person_jpeg, garment_png):
    sandbox = make_sandbox(token_ttl=1, latency=0.05)
    with fast_client(sandbox) as client:
        submission = client.generate(person_jpeg, garment_png)
        client.job(submission.job_id)
        assert client.token_requests == 1
        time.sleep(1.05)
        client.job(submission.job_id)

    stats = sandbox.engine.stats()
    assert client.token_requests == stats["token_requests"] == 2
    assert stats["unauthorized"] == 0  # refreshed before it expired, not after a 401


def test_a_401_midway_fetches_one_new_token_and_retries(person_jpeg, garment_png):
    """A server restart forgets every token: the next call gets a 401, refreshes, succeeds."""
    first = start_embedded(_fast_config())
    port = int(first.base_url.rsplit(":", 1)[1])
    client = fast_client(first)
    try:
        client.generate(person_jpeg, garment_png)
        first.stop()
        second = start_embedded(_fast_config(), port=port)
        try:
            submission = client.generate(person_jpeg, garment_png)
            assert submission.job_id
            stats = second.engine.stats()
            assert (stats["unauthorized"], stats["token_requests"], stats["jobs_created"]) == (
                1,
                1,
                1,
            )
        finally:
            second.stop()
    finally:
        first.stop()
        client.close()
    assert client.token_requests == 2


def _fast_config():
    from mirrago.sandbox.server import SandboxConfig

    return SandboxConfig(latency=0.05, workers=2)


def test_wrong_secret_is_one_sentence_without_the_secret(sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    with MirragoClient(sandbox.base_url, sandbox.client_id, WRONG_SECRET, **FAST) as client:
        with pytest.raises(AuthenticationError) as caught:
            client.job("any")

    error = caught.value
    assert str(error) == (
        "The Mirrago server rejected the client id or secret (401). "
        "Check MIRRAGO_CLIENT_ID and MIRRAGO_CLIENT_SECRET."
    )
    for text in (str(error), repr(error), repr(client), str(error.body), caplog.text):
        assert WRONG_SECRET not in text
    assert sandbox.engine.stats()["token_failures"] == 1  # a refused secret is not retried
    assert sandbox.engine.stats()["jobs_created"] == 0


def test_authenticate_checks_credentials_without_creating_a_job(sandbox):
    with MirragoClient(sandbox.base_url, sandbox.client_id, sandbox.client_secret, **FAST) as good:
        good.authenticate()
        good.authenticate()  # the cached token serves the second check
        assert good.token_requests == 1
    with MirragoClient(sandbox.base_url, sandbox.client_id, WRONG_SECRET, **FAST) as bad:
        with pytest.raises(AuthenticationError):
            bad.authenticate()
    assert sandbox.engine.stats()["generate_requests"] == 0


def test_no_token_or_secret_in_debug_logs(sandbox, client, caplog, person_jpeg, garment_png):
    caplog.set_level(logging.DEBUG)
    submission = client.generate(person_jpeg, garment_png)
    client.wait(submission.job_id, timeout=10)

    token = client._token.value  # the only way to know what must not leak
    assert token and token not in caplog.text
    assert sandbox.client_secret not in caplog.text
    assert "mirrago.client" in {record.name for record in caplog.records}


def test_32_threads_sharing_a_client_cause_one_token_request(sandbox, client):
    barrier = threading.Barrier(32)
    outcomes: list[object] = []

    def read_a_job() -> None:
        barrier.wait()
        try:
            client.job("no-such-job")
        except BadRequestError as error:  # the unknown job is fine: the token is the point
            outcomes.append(error)
        except Exception as error:  # noqa: BLE001 - collected and asserted below
            outcomes.append(error)

    threads = [threading.Thread(target=read_a_job) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert len(outcomes) == 32
    assert all(isinstance(outcome, BadRequestError) for outcome in outcomes), outcomes
    assert client.token_requests == 1
    assert sandbox.engine.stats()["token_requests"] == 1


# ----------------------------------------------------------------- generate: both forms


def test_generate_uploads_files_from_paths(client, tmp_path: Path, person_jpeg, garment_png):
    target = tmp_path / "person.jpg"
    garment = tmp_path / "shirt.png"
    target.write_bytes(person_jpeg)
    garment.write_bytes(garment_png)

    submission = client.generate(target, str(garment), username="qa-bot")

    assert isinstance(submission, Submission)
    assert submission.job_id
    assert submission.username == "qa-bot"
    assert submission.credits_before == 1000
    assert submission.created_at is not None
    assert client.wait(submission.job_id, timeout=10).status is JobStatus.COMPLETED


def test_generate_sends_two_urls_as_json(sandbox, client):
    target = _sample_urls(sandbox, "persons")[0]
    garment = _sample_urls(sandbox, "garments")[0]

    submission = client.generate(target, garment, background="white")

    job = client.wait(submission.job_id, timeout=10)
    assert job.status is JobStatus.COMPLETED, job.error_message
    assert job.result_url


def test_generate_mixes_a_file_and_a_url(sandbox, client, person_jpeg):
    garment = _sample_urls(sandbox, "garments")[-1]

    submission = client.generate(person_jpeg, garment)

    assert client.wait(submission.job_id, timeout=10).status is JobStatus.COMPLETED


def test_generate_takes_a_pil_image_and_a_file_object(client, garment_png):
    person = Image.new("RGB", (200, 300), (90, 120, 150))
    garment = Image.open(io.BytesIO(garment_png)).convert("RGBA")  # alpha: sent as PNG

    with io.BytesIO(garment_png) as handle:
        first = client.generate(person, handle)
    second = client.generate(person, garment)

    for submission in (first, second):
        assert client.wait(submission.job_id, timeout=10).status is JobStatus.COMPLETED


def test_generate_refuses_a_missing_path_before_sending(sandbox, client, garment_png):
    with pytest.raises(ImageError) as caught:
        client.generate("/nowhere/person.jpg", garment_png)

    assert "target (person) image" in str(caught.value)
    assert "does not exist" in str(caught.value)
    assert sandbox.engine.stats()["generate_requests"] == 0


def test_generate_refuses_an_input_over_the_upload_cap(sandbox, person_jpeg, garment_png):
    with fast_client(sandbox, max_upload_bytes=len(garment_png) - 1) as client:
        with pytest.raises(ImageError) as caught:
            client.generate(person_jpeg[:100], garment_png)

    assert "garment image" in str(caught.value)
    assert "upload limit" in str(caught.value)
    assert sandbox.engine.stats()["generate_requests"] == 0


def test_a_non_image_upload_is_a_bad_request_naming_the_field(sandbox, client, garment_png):
    with pytest.raises(BadRequestError) as caught:
        client.generate(b"this is not an image at all", garment_png)

    assert caught.value.status_code == 400
    assert "target_image" in str(caught.value)
    assert sandbox.engine.stats()["jobs_created"] == 0


def test_a_non_image_garment_is_a_bad_request_naming_its_field(client, person_jpeg):
    with pytest.raises(BadRequestError) as caught:
        client.generate(person_jpeg, b"GIF? no: plain text")

    assert "garment_image" in str(caught.value)


def test_an_unreachable_image_url_is_a_bad_request(sandbox, client, person_jpeg):
    with pytest.raises(BadRequestError) as caught:
        client.generate(person_jpeg, f"{sandbox.base_url}/samples/garments/missing.png")

    assert caught.value.status_code == 400
    assert "garment_image" in str(caught.value)


def test_no_credits_left_is_its_own_error(make_sandbox, person_jpeg, garment_png):
    sandbox = make_sandbox(starting_credits=0)
    with fast_client(sandbox) as client:
        with pytest.raises(InsufficientCreditsError) as caught:
            client.generate(person_jpeg, garment_png)

    assert caught.value.status_code == 402
    assert "no credits left" in str(caught.value)


# ----------------------------------------------------------------- job and wait


def test_job_reads_an_unknown_id_as_a_bad_request(client):
    with pytest.raises(BadRequestError) as caught:
        client.job("does-not-exist")
    assert caught.value.status_code == 404


def test_wait_returns_a_failed_job_with_the_server_message(make_sandbox, person_jpeg, garment_png):
    sandbox = make_sandbox(job_fail_rate=1.0, latency=0.05)
    with fast_client(sandbox) as client:
        submission = client.generate(person_jpeg, garment_png)
        job = client.wait(submission.job_id, timeout=10)

    assert job.status is JobStatus.FAILED
    assert job.error_message
    assert job.result_url is None


def test_wait_raises_after_deadline(make_sandbox, person_jpeg, garment_png):
    sandbox = make_sandbox(latency=5.0)
    with fast_client(sandbox) as client:
        submission = client.generate(person_jpeg, garment_png)
        with pytest.raises(ServiceTimeoutError) as caught:
            client.wait(submission.job_id, timeout=0.5)
        # it gave up at its deadline, not when the 5 s job ended
        assert not client.job(submission.job_id).status.is_final

    assert submission.job_id in str(caught.value)
    assert "0.5 s" in str(caught.value)


def test_wait_calls_on_update_when_the_status_changes(client, person_jpeg, garment_png):
    submission = client.generate(person_jpeg, garment_png)
    seen: list[str] = []

    job = client.wait(submission.job_id, timeout=10, on_update=lambda j: seen.append(j.raw_status))

    assert seen[-1] == job.raw_status == "completed"
    assert all(a != b for a, b in zip(seen, seen[1:], strict=False))


def test_wait_completes_against_the_strict_reference(make_sandbox, person_jpeg, garment_png):
    sandbox = make_sandbox(strict_reference=True, latency=0.3)
    updates: list[Job] = []
    with fast_client(sandbox) as client:
        submission = client.generate(person_jpeg, garment_png)
        job = client.wait(submission.job_id, timeout=10, on_update=updates.append)
        image = client.download(job.result_url)

    assert job.status is JobStatus.COMPLETED
    assert job.raw_status == "completedc"
    in_progress = [u for u in updates if u.status is JobStatus.IN_PROGRESS]
    assert in_progress and all(u.result_url is None for u in in_progress)
    assert Image.open(io.BytesIO(image)).size[0] > 0


# ----------------------------------------------------------------- rate limits and faults


def test_a_rate_limited_submit_is_raised_not_retried(make_sandbox, person_jpeg, garment_png):
    # The runner owns retrying jobs (it paces itself on every rate-limit answer): the client
    # retries only idempotent requests.
    sandbox = make_sandbox(rate_limit=1, latency=0.05)
    with fast_client(sandbox, max_retries=6) as client:
        client.generate(person_jpeg, garment_png)
        with pytest.raises(RateLimitError) as caught:
            client.generate(person_jpeg, garment_png)

    assert caught.value.status_code == 429 and caught.value.retry_after
    stats = sandbox.engine.stats()
    assert stats["generate_requests"] == 2 and stats["jobs_created"] == 1


def test_strict_reference_500_rate_limit_is_a_rate_limit(
    make_sandbox, manual_clock, person_jpeg, garment_png
):
    sandbox = make_sandbox(strict_reference=True, rate_limit=1, latency=0.05)
    sandbox.engine.clock = manual_clock  # no refill between the two submits
    with fast_client(sandbox, max_retries=0) as impatient:
        impatient.generate(person_jpeg, garment_png)
        with pytest.raises(RateLimitError) as caught:
            impatient.generate(person_jpeg, garment_png)

    assert caught.value.status_code == 500
    assert "rate-limiting" in str(caught.value)
    assert sandbox.engine.stats()["jobs_created"] == 1


def test_job_reads_survive_server_errors_through_retries(make_sandbox, person_jpeg, garment_png):
    sandbox = make_sandbox(latency=0.05, seed=7)
    with fast_client(sandbox, max_retries=10) as client:
        submission = client.generate(person_jpeg, garment_png)
        sandbox.engine.config.read_fail_rate = 0.5
        jobs = [client.job(submission.job_id) for _ in range(8)]

    assert all(job.job_id == submission.job_id for job in jobs)
    assert sandbox.engine.stats()["read_faults"] >= 1


def test_a_submit_that_got_a_500_is_uncertain_and_not_resent(
    make_sandbox, person_jpeg, garment_png
):
    sandbox = make_sandbox(submit_fail_rate=1.0)
    with fast_client(sandbox) as client:
        with pytest.raises(SubmissionUncertainError) as caught:
            client.generate(person_jpeg, garment_png)

    assert str(caught.value).startswith("The server may or may not have created this job")
    assert "check the account's jobs" in str(caught.value)
    stats = sandbox.engine.stats()
    assert stats["generate_requests"] == 1
    assert stats["jobs_created"] == 0


# ----------------------------------------------------------------- download


def test_download_resolves_a_relative_url(client, person_jpeg, garment_png):
    job = client.wait(client.generate(person_jpeg, garment_png).job_id, timeout=10)
    path = "/" + job.result_url.split("/", 3)[3]

    data = client.download(path)

    assert data == client.download(job.result_url)
    assert Image.open(io.BytesIO(data)).width > 0


def test_download_stops_at_the_size_cap(client, person_jpeg, garment_png):
    job = client.wait(client.generate(person_jpeg, garment_png).job_id, timeout=10)

    with pytest.raises(ImageError) as caught:
        client.download(job.result_url, max_bytes=1000)

    assert "larger than" in str(caught.value)


def test_download_refuses_what_is_not_an_image(sandbox, client):
    with pytest.raises(ImageError) as caught:
        client.download("/docs")

    assert "is not an image" in str(caught.value)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _Recorder(BaseHTTPRequestHandler):
    """A plain HTTP server that records every request, to see what the client puts on the wire
    and how it treats answers the sandbox never gives: a liberal token answer (no token_type,
    expires_in a string), a slow submit, a job answered with an image instead of JSON. Its GETs
    serve a PNG, as a CDN would."""

    seen: list[Recorded]
    png: bytes
    submit_delay: float = 0.0

    def do_GET(self):  # noqa: N802 - http.server's name
        self._record(b"")
        self._answer(200, self.png, "image/png")

    def do_POST(self):  # noqa: N802
        self._record(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        if self.path == "/oauth/token":
            self._answer(200, b'{"access_token": "tok-123", "expires_in": "3600"}')
        else:
            time.sleep(self.submit_delay)
            self._answer(200, b'{"job_id": "job-1", "status": "pending", "credits_before": 7}')

    def _record(self, body: bytes) -> None:
        self.seen.append(Recorded(self.command, self.path, dict(self.headers), body))

    def _answer(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:  # the client gave up waiting (the slow-submit test)
            pass

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def recorder(garment_png):
    """(base_url, handler class): set `handler.submit_delay`, read `handler.seen`."""
    handler = type("Recorder", (_Recorder,), {"seen": [], "png": garment_png})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()
    thread.join(2)


def test_token_request_is_the_reference_json_and_a_liberal_answer_works(recorder):
    base, handler = recorder
    with MirragoClient(base, "my-id", "my-secret", **FAST) as client:
        client.generate(f"{base}/a.jpg", f"{base}/b.png")
        client.generate(f"{base}/a.jpg", f"{base}/b.png")

    token_calls = [r for r in handler.seen if r.path == "/oauth/token"]
    assert len(token_calls) == 1 and client.token_requests == 1
    assert token_calls[0].headers["Content-Type"] == "application/json"
    assert json.loads(token_calls[0].body) == {
        "client_id": "my-id",
        "client_secret": "my-secret",
        "grant_type": "client_credentials",
    }
    submits = [r for r in handler.seen if r.path == "/v1/mirrago/generate-image"]
    assert [r.headers["Authorization"] for r in submits] == ["Bearer tok-123"] * 2
    assert all(r.headers["User-Agent"] == f"mirrago-studio/{__version__}" for r in handler.seen)


def test_two_urls_go_as_json_with_background_spelled_right(recorder):
    base, handler = recorder
    with MirragoClient(base, "id", "secret", **FAST) as client:
        submission = client.generate(f"{base}/a.jpg", f"{base}/b.png", background="white")

    sent = handler.seen[-1]
    assert submission.job_id == "job-1" and submission.credits_before == 7
    assert sent.headers["Content-Type"] == "application/json"
    assert json.loads(sent.body) == {
        "target_image_url": f"{base}/a.jpg",
        "garment_image_url": f"{base}/b.png",
        "background": "white",
    }


def test_a_file_and_a_url_go_as_multipart_with_the_url_field(recorder, person_jpeg):
    base, handler = recorder
    with MirragoClient(base, "id", "secret", **FAST) as client:
        client.generate(person_jpeg, f"{base}/b.png", username="qa")

    sent = handler.seen[-1]
    assert sent.headers["Content-Type"].startswith("multipart/form-data")
    assert b'name="target_image"; filename="target_image.jpg"' in sent.body
    assert b"Content-Type: image/jpeg" in sent.body
    assert b'name="garment_image_url"' in sent.body
    assert b'name="username"' in sent.body
    assert b"background" not in sent.body and b"callback_url" not in sent.body


def test_a_submit_that_timed_out_after_sending_is_uncertain_and_not_resent(recorder):
    base, handler = recorder
    handler.submit_delay = 1.0
    with MirragoClient(base, "id", "secret", **{**FAST, "timeout": 0.3}) as client:
        with pytest.raises(SubmissionUncertainError) as caught:
            client.generate(f"{base}/a.jpg", f"{base}/b.png")

    assert "no answer within 0.3 s" in str(caught.value)
    assert isinstance(caught.value.cause, ServiceTimeoutError)
    assert len([r for r in handler.seen if r.path == "/v1/mirrago/generate-image"]) == 1


def test_a_job_answer_that_is_not_json_is_a_server_error(recorder):
    base, _handler = recorder
    with MirragoClient(base, "id", "secret", **FAST) as client:
        with pytest.raises(ServerError) as caught:
            client.job("job-1")  # the recorder answers with a PNG

    assert "job job-1" in str(caught.value)
    assert "not a JSON object" in str(caught.value)


def test_download_sends_no_token_to_a_foreign_host(client, recorder, person_jpeg, garment_png):
    base, handler = recorder
    client.job(client.generate(person_jpeg, garment_png).job_id)  # holds a token now

    data = client.download(f"{base}/cdn/result.png?signature=abc")

    assert data == garment_png
    assert handler.seen[-1].path == "/cdn/result.png?signature=abc"
    assert "Authorization" not in handler.seen[-1].headers


# ----------------------------------------------------------------- connection


def test_connection_refused_is_one_clear_sentence():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with MirragoClient(
        f"http://127.0.0.1:{port}", "id", "secret", max_retries=1, backoff_factor=0.01
    ) as client:
        with pytest.raises(ServiceConnectionError) as caught:
            client.job("any")

    assert str(caught.value) == (
        f"Could not reach the Mirrago server at 127.0.0.1:{port}: the connection was refused. "
        "Check MIRRAGO_BASE_URL and your network."
    )
    assert "secret" not in repr(caught.value)


def test_retry_after_is_read_as_seconds_or_an_http_date():
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    from mirrago.errors import _retry_after

    in_ten = format_datetime(datetime.now(UTC) + timedelta(seconds=10), usegmt=True)
    assert _retry_after("3") == 3.0
    assert 8 <= _retry_after(in_ten) <= 10
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert _retry_after("soon") is None
