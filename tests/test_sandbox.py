"""The sandbox's own contract: mirrago-api.md as read by API-NOTES.md, over real HTTP on loopback.

These tests speak plain `requests`, not mirrago.client, so the server is specified on its own.
"""

from __future__ import annotations

import io
import json
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import requests
from PIL import Image
from support import eventually

from mirrago.sandbox.server import EmbeddedSandbox, Engine, SandboxConfig, embedded

if TYPE_CHECKING:
    from conftest import ManualClock

TIMEOUT = 10
SAMPLES_DIR = Path(__file__).parents[1] / "mirrago" / "samples"
SUBMISSION_KEYS = {
    "job_id",
    "status",
    "business_id",
    "username",
    "cloth_id",
    "credits_before",
    "created_at",
}
JOB_KEYS = {
    "job_id",
    "cloth_id",
    "cloth_img_url",
    "status",
    "created_at",
    "generated_image_key",
    "result_url",
    "error_msg",
}
FINAL = {"completed", "completedc", "failed"}
MakeSandbox = Callable[..., EmbeddedSandbox]


# ---- helpers ------------------------------------------------------------------------------------


def token_response(
    sandbox: EmbeddedSandbox, client_id: str | None = None, secret: str | None = None
) -> requests.Response:
    body = {
        "client_id": client_id or sandbox.client_id,
        "client_secret": secret or sandbox.client_secret,
        "grant_type": "client_credentials",
    }
    return requests.post(f"{sandbox.base_url}/oauth/token", json=body, timeout=TIMEOUT)


def auth(sandbox: EmbeddedSandbox, client_id: str | None = None, secret: str | None = None):
    response = token_response(sandbox, client_id, secret)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def submit_files(
    sandbox: EmbeddedSandbox, headers: dict[str, str], person: bytes, garment: bytes, **fields: Any
) -> requests.Response:
    files = {
        "target_image": ("person.jpg", person, "image/jpeg"),
        "garment_image": ("garment.png", garment, "image/png"),
    }
    return requests.post(
        f"{sandbox.base_url}/v1/mirrago/generate-image",
        headers=headers,
        files=files,
        data=fields,
        timeout=TIMEOUT,
    )


def submit_json(
    sandbox: EmbeddedSandbox, headers: dict[str, str], body: dict[str, Any]
) -> requests.Response:
    return requests.post(
        f"{sandbox.base_url}/v1/mirrago/generate-image", headers=headers, json=body, timeout=TIMEOUT
    )


def submit_mixed(
    sandbox: EmbeddedSandbox,
    headers: dict[str, str],
    upload: tuple[str, bytes],
    url_field: str,
    url: str,
) -> requests.Response:
    """One side as an uploaded file, the other as a URL in a form field."""
    return requests.post(
        f"{sandbox.base_url}/v1/mirrago/generate-image",
        headers=headers,
        files={upload[0]: ("image", upload[1], "application/octet-stream")},
        data={url_field: url},
        timeout=TIMEOUT,
    )


def read_job(sandbox: EmbeddedSandbox, headers: dict[str, str], job_id: str) -> requests.Response:
    return requests.get(
        f"{sandbox.base_url}/v1/mirrago/job/{job_id}", headers=headers, timeout=TIMEOUT
    )


def job_history(
    sandbox: EmbeddedSandbox, headers: dict[str, str], job_id: str, deadline: float = 8.0
) -> list[dict[str, Any]]:
    """Every distinct state the job shows while polled every 10 ms, ending with the final one."""
    seen: list[dict[str, Any]] = []
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        response = read_job(sandbox, headers, job_id)
        assert response.status_code == 200, response.text
        job = response.json()
        if not seen or job != seen[-1]:
            seen.append(job)
        if job["status"] in FINAL:
            return seen
        time.sleep(0.01)
    raise AssertionError(f"job {job_id} did not finish within {deadline} s: {seen[-1:]}")


def final_job(sandbox: EmbeddedSandbox, headers: dict[str, str], job_id: str) -> dict[str, Any]:
    return job_history(sandbox, headers, job_id)[-1]


def detail(response: requests.Response) -> str:
    return str(response.json().get("detail"))


def sample_urls(sandbox: EmbeddedSandbox) -> dict[str, list[str]]:
    response = requests.get(f"{sandbox.base_url}/samples", timeout=TIMEOUT)
    assert response.status_code == 200
    urls = response.json()
    assert urls["persons"] and urls["garments"], "the shipped sample images are missing"
    return urls


def tiny_png(colour: tuple[int, int, int], size: tuple[int, int] = (48, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def as_array(data: bytes, size: tuple[int, int] = (128, 128)) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB").resize(size), dtype=np.float32)


@pytest.fixture
def headers(sandbox: EmbeddedSandbox) -> dict[str, str]:
    return auth(sandbox)


# ---- tokens -------------------------------------------------------------------------------------


def test_token_is_issued_for_the_demo_credentials(sandbox: EmbeddedSandbox) -> None:
    response = token_response(sandbox)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "expires_in", "token_type"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert len(body["access_token"]) >= 32 and sandbox.client_secret not in body["access_token"]
    assert token_response(sandbox).json()["access_token"] != body["access_token"]


def test_token_accepts_a_form_encoded_body(sandbox: EmbeddedSandbox) -> None:
    form = {
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
        "grant_type": "client_credentials",
    }
    response = requests.post(f"{sandbox.base_url}/oauth/token", data=form, timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.json()["token_type"] == "Bearer"


def test_token_is_refused_for_a_wrong_secret(sandbox: EmbeddedSandbox) -> None:
    response = token_response(sandbox, secret="not-the-secret")
    assert response.status_code == 401
    assert "access_token" not in response.json()
    assert "credentials" in response.text.lower()
    assert sandbox.engine.stats()["token_failures"] == 1


def test_token_is_refused_without_credentials(sandbox: EmbeddedSandbox) -> None:
    response = requests.post(f"{sandbox.base_url}/oauth/token", json={}, timeout=TIMEOUT)
    assert response.status_code == 401


def test_api_refuses_a_missing_or_unknown_token(sandbox: EmbeddedSandbox) -> None:
    job_url = f"{sandbox.base_url}/v1/mirrago/job/{uuid.uuid4()}"
    assert requests.get(job_url, timeout=TIMEOUT).status_code == 401
    unknown = {"Authorization": "Bearer made-up-token"}
    response = requests.get(job_url, headers=unknown, timeout=TIMEOUT)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    submit = submit_json(sandbox, unknown, {"target_image_url": "http://x/a.jpg"})
    assert submit.status_code == 401


def test_token_expires_after_its_ttl(make_sandbox: MakeSandbox, manual_clock: ManualClock) -> None:
    sandbox = make_sandbox(token_ttl=0.5)
    clock = sandbox.engine.clock = manual_clock
    response = token_response(sandbox)
    assert response.json()["expires_in"] == 0.5
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    job_url = f"{sandbox.base_url}/v1/mirrago/job/{uuid.uuid4()}"
    assert requests.get(job_url, headers=headers, timeout=TIMEOUT).status_code == 404
    clock.advance(0.49)
    assert requests.get(job_url, headers=headers, timeout=TIMEOUT).status_code == 404
    clock.advance(0.01)
    assert requests.get(job_url, headers=headers, timeout=TIMEOUT).status_code == 401


# ---- generate-image: request forms --------------------------------------------------------------


def test_generate_with_multipart_files_answers_like_the_reference(
    sandbox: EmbeddedSandbox, headers: dict[str, str], person_jpeg: bytes, garment_png: bytes
) -> None:
    response = submit_files(sandbox, headers, person_jpeg, garment_png)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == SUBMISSION_KEYS
    assert uuid.UUID(body["job_id"]).version == 4
    assert body["status"] == "pending"
    assert body["business_id"] == sandbox.client_id
    assert re.fullmatch(r"TEMP[0-9a-f-]{36}", body["username"])
    assert re.fullmatch(
        rf"business/{body['business_id']}/clothes/[0-9a-f-]{{36}}\.png", body["cloth_id"]
    )
    assert body["credits_before"] == 1000
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}", body["created_at"])
    assert datetime.fromisoformat(body["created_at"]).tzinfo is None


def test_generate_keeps_the_given_username(
    sandbox: EmbeddedSandbox, headers: dict[str, str], person_jpeg: bytes, garment_png: bytes
) -> None:
    response = submit_files(sandbox, headers, person_jpeg, garment_png, username="qa-anna")
    assert response.json()["username"] == "qa-anna"


def test_completed_job_reports_an_absolute_result_url(
    sandbox: EmbeddedSandbox, headers: dict[str, str], person_jpeg: bytes, garment_png: bytes
) -> None:
    submission = submit_files(sandbox, headers, person_jpeg, garment_png).json()
    job = final_job(sandbox, headers, submission["job_id"])
    assert set(job) == JOB_KEYS
    assert job["status"] == "completed"
    assert job["job_id"] == submission["job_id"]
    assert job["cloth_id"] == submission["cloth_id"]
    assert job["created_at"] == submission["created_at"]
    assert job["result_url"].startswith(f"{sandbox.base_url}/results/")
    assert job["generated_image_key"] and job["error_msg"] == {}
    image = requests.get(job["result_url"], timeout=TIMEOUT)
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"


def test_generate_with_json_urls_to_the_sample_route(
    sandbox: EmbeddedSandbox, headers: dict[str, str]
) -> None:
    urls = sample_urls(sandbox)
    body = {
        "target_image_url": urls["persons"][0],
        "garment_image_url": urls["garments"][0],
        "backgroud": False,
    }
    response = submit_json(sandbox, headers, body)
    assert response.status_code == 200, response.text
    assert final_job(sandbox, headers, response.json()["job_id"])["status"] == "completed"


def test_generate_with_json_image_fields_holding_urls(
    sandbox: EmbeddedSandbox, headers: dict[str, str]
) -> None:
    urls = sample_urls(sandbox)
    body = {
        "target_image": urls["persons"][-1],
        "garment_image": urls["garments"][-1],
        "callback_url": "",
        "backgroud": False,
    }
    response = submit_json(sandbox, headers, body)
    assert response.status_code == 200, response.text
    assert response.json()["cloth_id"].endswith(".png")


def test_generate_with_a_file_and_a_url_in_one_multipart_request(
    sandbox: EmbeddedSandbox, headers: dict[str, str], person_jpeg: bytes
) -> None:
    garment_url = sample_urls(sandbox)["garments"][0]
    upload = ("target_image", person_jpeg)
    response = submit_mixed(sandbox, headers, upload, "garment_image_url", garment_url)
    assert response.status_code == 200, response.text
    assert final_job(sandbox, headers, response.json()["job_id"])["status"] == "completed"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("backgroud", "false"),
        ("background", "white"),
        ("background", "studio"),
        ("backgroud", "#dde"),
    ],
)
def test_generate_accepts_both_background_spellings(
    sandbox: EmbeddedSandbox,
    headers: dict[str, str],
    person_jpeg: bytes,
    garment_png: bytes,
    field: str,
    value: str,
) -> None:
    response = submit_files(sandbox, headers, person_jpeg, garment_png, **{field: value})
    assert response.status_code == 200, response.text
    assert final_job(sandbox, headers, response.json()["job_id"])["status"] == "completed"


def test_generate_refuses_an_unknown_background(
    sandbox: EmbeddedSandbox, headers: dict[str, str], person_jpeg: bytes, garment_png: bytes
) -> None:
    response = submit_files(sandbox, headers, person_jpeg, garment_png, background="sparkles")
    assert response.status_code == 400
    assert "background" in detail(response).lower() and "white" in detail(response)


# ---- generate-image: bad input ------------------------------------------------------------------


def test_missing_garment_gives_400_naming_the_field(
    sandbox: EmbeddedSandbox, headers: dict[str, str], person_jpeg: bytes
) -> None:
    response = requests.post(
        f"{sandbox.base_url}/v1/mirrago/generate-image",
        headers=headers,
        files={"target_image": ("person.jpg", person_jpeg, "image/jpeg")},
        timeout=TIMEOUT,
    )
    assert response.status_code == 400
    assert "garment_image" in detail(response)


def test_missing_target_gives_400_naming_the_field(
    sandbox: EmbeddedSandbox, headers: dict[str, str]
) -> None:
    response = submit_json(sandbox, headers, {"garment_image_url": "http://example.invalid/g.png"})
    assert response.status_code == 400
    assert "target_image" in detail(response)
    assert sandbox.engine.stats()["jobs_created"] == 0


def test_non_image_upload_gives_400_naming_the_field(
    sandbox: EmbeddedSandbox, headers: dict[str, str], person_jpeg: bytes
) -> None:
    response = submit_files(sandbox, headers, person_jpeg, b"%PDF-1.4 not an image at all")
    assert response.status_code == 400
    assert "garment_image" in detail(response)
    assert sandbox.engine.credits(sandbox.client_id) == 1000


def test_truncated_upload_gives_400_naming_the_field(
    sandbox: EmbeddedSandbox, headers: dict[str, str], person_jpeg: bytes, garment_png: bytes
) -> None:
    response = submit_files(sandbox, headers, person_jpeg[: len(person_jpeg) // 3], garment_png)
    assert response.status_code == 400
    assert "target_image" in detail(response)


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/person.jpg", "not a url", "http://127.0.0.1:9/person.jpg"],
)
def test_bad_image_url_gives_400_invalid_image_url(
    sandbox: EmbeddedSandbox, headers: dict[str, str], garment_png: bytes, url: str
) -> None:
    response = submit_mixed(
        sandbox, headers, ("garment_image", garment_png), "target_image_url", url
    )
    assert response.status_code == 400
    assert detail(response).startswith("Invalid image URL")
    assert "target_image_url" in detail(response)


def test_image_url_answering_404_gives_400_invalid_image_url(
    sandbox: EmbeddedSandbox, headers: dict[str, str], person_jpeg: bytes
) -> None:
    missing = f"{sandbox.base_url}/samples/garments/no-such-garment.png"
    response = submit_mixed(
        sandbox, headers, ("target_image", person_jpeg), "garment_image", missing
    )
    assert response.status_code == 400
    assert detail(response).startswith("Invalid image URL")
    assert "garment_image" in detail(response)


def test_image_url_to_a_non_image_gives_400_naming_the_field(
    sandbox: EmbeddedSandbox, headers: dict[str, str], person_jpeg: bytes
) -> None:
    not_an_image = f"{sandbox.base_url}/health"
    response = submit_mixed(
        sandbox, headers, ("target_image", person_jpeg), "garment_image_url", not_an_image
    )
    assert response.status_code == 400
    assert "garment_image_url" in detail(response)


def test_oversized_upload_gives_413(make_sandbox: MakeSandbox, person_jpeg: bytes) -> None:
    sandbox = make_sandbox(max_upload_bytes=20_000)
    headers = auth(sandbox)
    noise = np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    big = io.BytesIO()
    Image.fromarray(noise).save(big, format="PNG")
    assert len(big.getvalue()) > 20_000
    response = submit_files(sandbox, headers, person_jpeg, big.getvalue())
    assert response.status_code == 413
    assert "garment_image" in detail(response) and "limit" in detail(response)
    assert sandbox.engine.stats()["jobs_created"] == 0


def test_unreadable_body_gives_400(sandbox: EmbeddedSandbox, headers: dict[str, str]) -> None:
    response = requests.post(
        f"{sandbox.base_url}/v1/mirrago/generate-image",
        headers={**headers, "Content-Type": "application/json"},
        data=b"{not json",
        timeout=TIMEOUT,
    )
    assert response.status_code == 400


# ---- credits ------------------------------------------------------------------------------------


def test_each_job_costs_one_credit_and_reports_the_balance_before(
    sandbox: EmbeddedSandbox, headers: dict[str, str], person_jpeg: bytes, garment_png: bytes
) -> None:
    first = submit_files(sandbox, headers, person_jpeg, garment_png).json()
    second = submit_files(sandbox, headers, person_jpeg, garment_png).json()
    assert (first["credits_before"], second["credits_before"]) == (1000, 999)
    assert sandbox.engine.credits(sandbox.client_id) == 998


def test_failed_job_is_refunded_and_says_why(
    make_sandbox: MakeSandbox, person_jpeg: bytes, garment_png: bytes
) -> None:
    sandbox = make_sandbox(job_fail_rate=1.0)
    headers = auth(sandbox)
    submission = submit_files(sandbox, headers, person_jpeg, garment_png).json()
    job = final_job(sandbox, headers, submission["job_id"])
    assert job["status"] == "failed"
    assert job["result_url"] == ""
    assert job["generated_image_key"] == ""
    assert set(job["error_msg"]) == {"error"} and job["error_msg"]["error"]
    assert sandbox.engine.credits(sandbox.client_id) == 1000
    assert submit_files(sandbox, headers, person_jpeg, garment_png).json()["credits_before"] == 1000
    assert sandbox.engine.stats()["jobs_failed"] >= 1


def test_no_credits_left_gives_402_and_creates_no_job(
    make_sandbox: MakeSandbox, person_jpeg: bytes, garment_png: bytes
) -> None:
    sandbox = make_sandbox(starting_credits=1)
    headers = auth(sandbox)
    assert submit_files(sandbox, headers, person_jpeg, garment_png).status_code == 200
    response = submit_files(sandbox, headers, person_jpeg, garment_png)
    assert response.status_code == 402
    assert "credits" in detail(response).lower()
    assert sandbox.engine.stats()["jobs_created"] == 1
    assert sandbox.engine.credits(sandbox.client_id) == 0


# ---- one account shared by every sandbox on a credits file -----------------------------------


def test_sandboxes_on_one_credits_file_share_one_balance(
    make_sandbox: MakeSandbox, tmp_path: Path, person_jpeg: bytes, garment_png: bytes
) -> None:
    shared = tmp_path / "data" / "sandbox-credits.sqlite3"
    first = make_sandbox(credits_file=shared, starting_credits=50)
    second = make_sandbox(credits_file=shared, starting_credits=50)
    on_first = submit_files(first, auth(first), person_jpeg, garment_png).json()
    on_second = submit_files(second, auth(second), person_jpeg, garment_png).json()
    assert (on_first["credits_before"], on_second["credits_before"]) == (50, 49)
    assert first.engine.credits(first.client_id) == second.engine.credits(second.client_id) == 48
    first.stop()
    second.stop()
    later = make_sandbox(credits_file=shared, starting_credits=50)  # the balance outlives them
    assert later.engine.credits(later.client_id) == 48


def test_a_refund_on_one_sandbox_shows_on_every_sandbox_of_the_file(
    make_sandbox: MakeSandbox, tmp_path: Path, person_jpeg: bytes, garment_png: bytes
) -> None:
    shared = tmp_path / "sandbox-credits.sqlite3"
    failing = make_sandbox(credits_file=shared, job_fail_rate=1.0)
    other = make_sandbox(credits_file=shared)
    headers = auth(failing)
    submission = submit_files(failing, headers, person_jpeg, garment_png).json()
    assert final_job(failing, headers, submission["job_id"])["status"] == "failed"
    assert other.engine.credits(other.client_id) == 1000
    other.engine.set_credits(other.client_id, 7)
    assert failing.engine.credits(failing.client_id) == 7


SUBMITTER = """
import json, sys, threading
from mirrago.sandbox.engine import Engine, ImageSource, SandboxConfig, SandboxError, SubmitRequest
path, person, garment, per_thread = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
engine = Engine(SandboxConfig(credits_file=path, latency=0.0, workers=1, fitted=False))
request = SubmitRequest(ImageSource("target_image", data=open(person, "rb").read()),
                        ImageSource("garment_image", data=open(garment, "rb").read()))
seen, refused = [], []
def submit():
    for _ in range(per_thread):
        try:
            seen.append(engine.submit("demo-client", request, "http://127.0.0.1:1")["credits_before"])
        except SandboxError as error:
            refused.append(error.status_code)
threads = [threading.Thread(target=submit) for _ in range(3)]
[thread.start() for thread in threads]
[thread.join() for thread in threads]
engine.stop()
print(json.dumps({"seen": seen, "refused": refused}))
"""


@pytest.mark.slow
def test_two_processes_spending_at_once_lose_and_double_count_no_credit(tmp_path: Path) -> None:
    shared = tmp_path / "sandbox-credits.sqlite3"
    person, garment = tmp_path / "person.png", tmp_path / "garment.png"
    person.write_bytes(tiny_png((0, 0, 200)))
    garment.write_bytes(tiny_png((200, 0, 0)))
    primer = Engine(SandboxConfig(credits_file=shared))
    primer.set_credits("demo-client", 100)
    primer.stop()
    command = [sys.executable, "-c", SUBMITTER, str(shared), str(person), str(garment), "20"]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    answers = [json.loads(process.communicate(timeout=120)[0]) for process in processes]
    seen = [credits for answer in answers for credits in answer["seen"]]
    refused = [status for answer in answers for status in answer["refused"]]
    # 120 submissions on 100 credits: each credit charged exactly once, then 402s.
    assert sorted(seen) == list(range(1, 101))
    assert refused == [402] * 20
    engine = Engine(SandboxConfig(credits_file=shared))
    try:
        assert engine.credits("demo-client") == 0
    finally:
        engine.stop()


# ---- rate limit ---------------------------------------------------------------------------------


def test_rate_limit_gives_429_with_retry_after_and_charges_nothing(
    make_sandbox: MakeSandbox, manual_clock: ManualClock
) -> None:
    sandbox = make_sandbox(rate_limit=4)
    clock = sandbox.engine.clock = manual_clock  # no refill while the five are sent
    headers = auth(sandbox)
    person, garment = tiny_png((0, 0, 200)), tiny_png((200, 0, 0))
    answers = [submit_files(sandbox, headers, person, garment) for _ in range(5)]
    assert [r.status_code for r in answers] == [200, 200, 200, 200, 429]
    assert int(answers[-1].headers["Retry-After"]) >= 1
    assert "rate limit" in detail(answers[-1]).lower()
    stats = sandbox.engine.stats()
    assert (stats["jobs_created"], stats["rate_limited"]) == (4, 1)
    assert sandbox.engine.credits(sandbox.client_id) == 996
    clock.advance(0.25)  # a bucket of 4/s refills one submit in 0.25 s
    assert submit_files(sandbox, headers, person, garment).status_code == 200


def test_rate_limit_under_strict_reference_is_a_500_rate_limit(
    make_sandbox: MakeSandbox, manual_clock: ManualClock
) -> None:
    sandbox = make_sandbox(rate_limit=1, strict_reference=True)
    sandbox.engine.clock = manual_clock  # the second submit comes before any refill
    headers = auth(sandbox)
    person, garment = tiny_png((0, 0, 200)), tiny_png((200, 0, 0))
    assert submit_files(sandbox, headers, person, garment).status_code == 200
    response = submit_files(sandbox, headers, person, garment)
    assert response.status_code == 500
    assert "Rate Limit" in response.text
    assert "Retry-After" not in response.headers
    assert sandbox.engine.stats()["jobs_created"] == 1


# ---- job lifecycle ------------------------------------------------------------------------------


def test_job_waits_queued_then_processing_then_completed(
    make_sandbox: MakeSandbox, person_jpeg: bytes, garment_png: bytes
) -> None:
    sandbox = make_sandbox(workers=1, latency=0.3)
    headers = auth(sandbox)
    first = submit_files(sandbox, headers, person_jpeg, garment_png).json()["job_id"]
    second = submit_files(sandbox, headers, person_jpeg, garment_png).json()["job_id"]
    history = job_history(sandbox, headers, second)
    statuses = [job["status"] for job in history]
    assert statuses[0] == "queued" and statuses[-2:] == ["processing", "completed"]
    assert all(job["result_url"] is None for job in history[:-1])
    # One worker: the job submitted first was finished before the second one started.
    assert read_job(sandbox, headers, first).json()["status"] == "completed"


def test_strict_reference_uses_only_the_reference_spellings(
    make_sandbox: MakeSandbox, person_jpeg: bytes, garment_png: bytes
) -> None:
    sandbox = make_sandbox(strict_reference=True, workers=1, latency=0.25)
    headers = auth(sandbox)
    submission = submit_files(sandbox, headers, person_jpeg, garment_png).json()
    assert submission["status"] == "pending"
    history = job_history(sandbox, headers, submission["job_id"])
    assert {job["status"] for job in history} <= {"pending", "queued", "completedc"}
    assert history[0]["status"] == "queued" and history[-1]["status"] == "completedc"
    assert all(job["result_url"] is None for job in history[:-1])
    assert history[-1]["result_url"].startswith(sandbox.base_url)


def test_read_faults_give_500_until_switched_off(
    make_sandbox: MakeSandbox, person_jpeg: bytes, garment_png: bytes
) -> None:
    sandbox = make_sandbox(read_fail_rate=1.0)
    headers = auth(sandbox)
    job_id = submit_files(sandbox, headers, person_jpeg, garment_png).json()["job_id"]
    assert read_job(sandbox, headers, job_id).status_code == 500
    sandbox.engine.config.read_fail_rate = 0.0
    assert read_job(sandbox, headers, job_id).status_code == 200
    assert sandbox.engine.stats()["read_faults"] == 1


def test_submit_fault_is_a_plain_500_and_creates_no_job(
    make_sandbox: MakeSandbox, person_jpeg: bytes, garment_png: bytes
) -> None:
    sandbox = make_sandbox(submit_fail_rate=1.0)
    headers = auth(sandbox)
    response = submit_files(sandbox, headers, person_jpeg, garment_png)
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal Server Error"}
    stats = sandbox.engine.stats()
    assert (stats["submit_faults"], stats["jobs_created"]) == (1, 0)
    assert sandbox.engine.credits(sandbox.client_id) == 1000


def test_seeded_faults_repeat_from_run_to_run(make_sandbox: MakeSandbox) -> None:
    person, garment = tiny_png((0, 0, 200)), tiny_png((200, 0, 0))

    def outcomes() -> list[int]:
        sandbox = make_sandbox(submit_fail_rate=0.5, seed=7)
        headers = auth(sandbox)
        return [submit_files(sandbox, headers, person, garment).status_code for _ in range(10)]

    first = outcomes()
    assert set(first) == {200, 500}
    assert outcomes() == first


def test_unknown_job_is_404(sandbox: EmbeddedSandbox, headers: dict[str, str]) -> None:
    assert read_job(sandbox, headers, str(uuid.uuid4())).status_code == 404
    assert read_job(sandbox, headers, "not-a-job").status_code == 404


def test_job_of_another_client_is_404(
    sandbox: EmbeddedSandbox, headers: dict[str, str], person_jpeg: bytes, garment_png: bytes
) -> None:
    job_id = submit_files(sandbox, headers, person_jpeg, garment_png).json()["job_id"]
    sandbox.engine.add_client("other-shop", "other-secret")
    other = auth(sandbox, "other-shop", "other-secret")
    assert read_job(sandbox, other, job_id).status_code == 404
    assert read_job(sandbox, headers, job_id).status_code == 200


def test_two_hundred_jobs_all_complete(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(latency=0.0)
    headers = auth(sandbox)
    person, garment = tiny_png((0, 0, 200)), tiny_png((200, 0, 0))
    job_ids = [submit_files(sandbox, headers, person, garment).json()["job_id"] for _ in range(200)]
    statuses = {final_job(sandbox, headers, job_id)["status"] for job_id in job_ids}
    assert statuses == {"completed"}
    assert sandbox.engine.stats()["jobs_completed"] == 200


# ---- results ------------------------------------------------------------------------------------


def test_result_is_a_composite_showing_the_garment_without_its_backdrop(
    sandbox: EmbeddedSandbox, headers: dict[str, str], person_jpeg: bytes, garment_png: bytes
) -> None:
    submission = submit_files(sandbox, headers, person_jpeg, garment_png).json()
    result = requests.get(
        final_job(sandbox, headers, submission["job_id"])["result_url"], timeout=TIMEOUT
    )
    assert result.content.startswith(b"\x89PNG")
    with Image.open(io.BytesIO(result.content)) as image:
        assert image.format == "PNG" and max(image.size) <= 1024
        pixels = np.asarray(image.convert("RGB"), dtype=np.int16)

    rendered = as_array(result.content)
    assert np.abs(rendered - as_array(person_jpeg)).mean() > 4
    assert np.abs(rendered - as_array(garment_png)).mean() > 4

    height, width, _ = pixels.shape
    torso = pixels[int(height * 0.35) : int(height * 0.8), int(width * 0.35) : int(width * 0.65)]
    red = (torso[..., 0] > 150) & (torso[..., 1] < 80) & (torso[..., 2] < 80)
    assert red.mean() > 0.4, "the garment's red should cover most of the torso"
    # Neither the person nor the garment itself is near-white: only the garment's backdrop is.
    near_white = (pixels > 235).all(axis=2)
    assert near_white.mean() < 0.005, "the garment's backdrop should have been removed"


def test_result_route_serves_only_finished_results(sandbox: EmbeddedSandbox) -> None:
    assert (
        requests.get(f"{sandbox.base_url}/results/{uuid.uuid4()}.png", timeout=TIMEOUT).status_code
        == 404
    )
    assert (
        requests.get(f"{sandbox.base_url}/results/..%2Fetc%2Fpasswd", timeout=TIMEOUT).status_code
        == 404
    )


# ---- callbacks ----------------------------------------------------------------------------------


@pytest.fixture
def callback_receiver() -> Iterator[tuple[str, list[dict[str, Any]], threading.Event]]:
    """A tiny HTTP server on loopback that records the JSON bodies POSTed to it."""
    received: list[dict[str, Any]] = []
    arrived = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
            length = int(self.headers.get("Content-Length", 0))
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()
            arrived.set()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received, arrived
    server.shutdown()
    server.server_close()


def test_callback_receives_the_final_job(
    sandbox: EmbeddedSandbox,
    headers: dict[str, str],
    person_jpeg: bytes,
    garment_png: bytes,
    callback_receiver: tuple[str, list[dict[str, Any]], threading.Event],
) -> None:
    url, received, arrived = callback_receiver
    submission = submit_files(sandbox, headers, person_jpeg, garment_png, callback_url=url).json()
    job = final_job(sandbox, headers, submission["job_id"])
    assert arrived.wait(5), "no callback arrived"
    assert received == [job]
    # The sandbox counts a delivery once the receiver's answer is back: allow it that moment.
    eventually(lambda: sandbox.engine.stats()["callbacks_sent"], "the delivery is counted", 5)
    assert sandbox.engine.stats()["callbacks_sent"] == 1


def test_callback_url_must_be_http(
    sandbox: EmbeddedSandbox, headers: dict[str, str], person_jpeg: bytes, garment_png: bytes
) -> None:
    response = submit_files(
        sandbox, headers, person_jpeg, garment_png, callback_url="file:///tmp/x"
    )
    assert response.status_code == 400
    assert "callback_url" in detail(response)


# ---- samples, health, docs, lifecycle of the server ---------------------------------------------


def test_sample_route_serves_every_shipped_sample(sandbox: EmbeddedSandbox) -> None:
    persons = sorted((SAMPLES_DIR / "persons").glob("*.jpg"))
    garments = sorted((SAMPLES_DIR / "garments").glob("*.png"))
    assert len(persons) >= 4 and len(garments) >= 6, "mirrago/samples/ is missing sample images"
    urls = sample_urls(sandbox)
    assert len(urls["persons"]) == len(persons) and len(urls["garments"]) == len(garments)
    for kind, path in [("persons", persons[0]), ("garments", garments[0])]:
        response = requests.get(f"{sandbox.base_url}/samples/{kind}/{path.name}", timeout=TIMEOUT)
        assert response.status_code == 200
        assert response.content == path.read_bytes()
        assert response.headers["content-type"].startswith("image/")


def test_sample_route_refuses_paths_outside_the_samples(sandbox: EmbeddedSandbox) -> None:
    escapes = [
        "/samples/persons/%2E%2E",
        "/samples/persons/..%2F__init__.py",
        "/samples/persons/..%5C__init__.py",
        "/samples/..%2Fsandbox/server.py",
        "/samples/persons/%2E%2E%2F%2E%2E%2Fpyproject.toml",
        "/samples/persons/__init__.py",
        "/samples/secrets/x.png",
        "/samples/persons/.hidden.png",
    ]
    for path in escapes:
        response = requests.get(f"{sandbox.base_url}{path}", timeout=TIMEOUT)
        assert response.status_code == 404, path


def test_health_and_openapi_docs_answer(sandbox: EmbeddedSandbox) -> None:
    assert requests.get(f"{sandbox.base_url}/health", timeout=TIMEOUT).json()["status"] == "ok"
    assert requests.get(f"{sandbox.base_url}/docs", timeout=TIMEOUT).status_code == 200
    paths = requests.get(f"{sandbox.base_url}/openapi.json", timeout=TIMEOUT).json()["paths"]
    assert {"/oauth/token", "/v1/mirrago/generate-image", "/v1/mirrago/job/{job_id}"} <= set(paths)


def test_embedded_sandbox_stops_and_frees_its_port() -> None:
    with embedded(SandboxConfig(latency=0.05)) as sandbox:
        base_url = sandbox.base_url
        assert requests.get(f"{base_url}/health", timeout=TIMEOUT).status_code == 200
        assert "demo-secret" not in repr(sandbox)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{base_url}/health", timeout=2)
    sandbox.stop()  # a second stop is harmless


def test_many_concurrent_url_submissions_all_succeed(make_sandbox: MakeSandbox) -> None:
    # Each submission fetches the sandbox's own /samples/ URLs while others wait: the server
    # must keep serving those files however many submissions are in flight.
    sandbox = make_sandbox(latency=0.0)
    headers = auth(sandbox)
    urls = sample_urls(sandbox)
    body = {"target_image_url": urls["persons"][0], "garment_image_url": urls["garments"][0]}
    with ThreadPoolExecutor(48) as pool:
        answers = list(pool.map(lambda _: submit_json(sandbox, headers, body), range(48)))
    assert [r.status_code for r in answers] == [200] * 48


@pytest.mark.slow
def test_serve_runs_in_the_foreground_until_interrupted() -> None:
    code = (
        "from mirrago.sandbox.server import SandboxConfig, serve\n"
        "serve(SandboxConfig(latency=0.05), '127.0.0.1', 0)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stderr is not None
        announcement = "".join(process.stderr.readline() for _ in range(5))
        base_url = re.search(r"http://127\.0\.0\.1:\d+", announcement)
        assert base_url, announcement
        assert requests.get(f"{base_url[0]}/health", timeout=TIMEOUT).json()["status"] == "ok"
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
        rest = process.stderr.read()
    finally:
        process.kill()
    assert process.returncode == 0
    assert "demo-client" in announcement and "demo-secret" in announcement
    assert "stopped" in rest and "Traceback" not in rest
