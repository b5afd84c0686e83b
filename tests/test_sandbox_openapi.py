"""The sandbox's OpenAPI document: the whole contract, machine-readable, and fuzz-clean.

Schemathesis runs against an embedded sandbox with every check, a fixed seed and 30 examples per
operation; tests/schemathesis_hooks.py makes generated uploads real images and generated image
URLs the sandbox's own samples (the two rules no JSON schema can state).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from mirrago.sandbox.server import EmbeddedSandbox

pytestmark = pytest.mark.slow

TIMEOUT = 60  # a deadline for each request, generous on a busy machine
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
SEED = 20261201
MakeSandbox = Callable[..., EmbeddedSandbox]


def document(sandbox: EmbeddedSandbox) -> dict[str, Any]:
    response = requests.get(f"{sandbox.base_url}/openapi.json", timeout=TIMEOUT)
    assert response.status_code == 200
    return response.json()


def statuses(doc: dict[str, Any], path: str, method: str) -> set[str]:
    return set(doc["paths"][path][method]["responses"])


@pytest.mark.timeout(600)
def test_schemathesis_with_every_check_finds_no_failure(
    make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    # Users' defaults (private URLs refused), enough credits for every generated submission.
    sandbox = make_sandbox(allow_private_urls=False, starting_credits=1_000_000, latency=0.05)
    body = {"client_id": sandbox.client_id, "client_secret": sandbox.client_secret}
    token = requests.post(f"{sandbox.base_url}/oauth/token", json=body, timeout=TIMEOUT)
    command = [
        str(SCHEMATHESIS),
        "run",
        f"{sandbox.base_url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        "30",
        "--seed",
        str(SEED),
        "--header",
        f"Authorization: Bearer {token.json()['access_token']}",
        "--request-timeout",
        "60",
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS), "MIRRAGO_SANDBOX_URL": sandbox.base_url}
    run = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    assert "generated" in output and "passed" in output
    assert sandbox.engine.stats()["jobs_completed"] > 0  # valid submissions got through


def test_every_route_documents_every_status_it_answers(sandbox: EmbeddedSandbox) -> None:
    doc = document(sandbox)
    generate = "/v1/mirrago/generate-image"
    assert statuses(doc, generate, "post") == {"200", "400", "401", "402", "413", "429", "500"}
    assert statuses(doc, "/oauth/token", "post") == {"200", "400", "401", "413"}
    assert statuses(doc, "/v1/mirrago/job/{job_id}", "get") == {"200", "401", "404", "500"}
    assert statuses(doc, "/results/{name}", "get") == {"200", "404"}
    assert statuses(doc, "/samples/{kind}/{name}", "get") == {"200", "404"}
    assert "HTTPValidationError" not in doc["components"]["schemas"]  # no 422 is ever sent


def test_generate_image_documents_both_forms_and_one_of_file_or_url_per_side(
    sandbox: EmbeddedSandbox,
) -> None:
    doc = document(sandbox)
    schemas = doc["components"]["schemas"]
    content = doc["paths"]["/v1/mirrago/generate-image"]["post"]["requestBody"]["content"]
    assert set(content) == {"multipart/form-data", "application/json"}
    form, body = schemas["GenerateForm"], schemas["GenerateJson"]
    for schema in (form, body):
        # One rule per side: a file (or, in JSON, the URL in the field itself) or a `_url`.
        for side, rule in zip(("target_image", "garment_image"), schema["allOf"], strict=True):
            required = sorted(branch["required"][0] for branch in rule["anyOf"])
            assert required == [side, f"{side}_url"]
    assert form["properties"]["target_image"]["format"] == "binary"
    for name in ("background", "backgroud", "username", "callback_url"):
        assert name in form["properties"] and name in body["properties"]
    examples = content["application/json"]["examples"]
    values = [example["value"] for example in examples.values()]
    assert any("target_image_url" in value for value in values)
    assert any("target_image" in value for value in values)
    # The examples name this sandbox's own samples, so "Try it out" works as shown.
    for value in values:
        garment = value.get("garment_image_url") or value.get("garment_image")
        assert garment.startswith(f"{sandbox.base_url}/samples/")


def test_answers_carry_the_references_examples_and_readings(sandbox: EmbeddedSandbox) -> None:
    doc = document(sandbox)
    job = doc["paths"]["/v1/mirrago/job/{job_id}"]["get"]["responses"]["200"]
    examples = job["content"]["application/json"]["examples"]
    assert examples["completedc"]["value"]["status"] == "completedc"
    assert examples["processing"]["value"]["result_url"] is None
    assert examples["failed"]["value"]["error_msg"] == {"error": "something went wrong"}
    assert "completedc" in doc["components"]["schemas"]["Job"]["properties"]["status"]["enum"]
    server_error = doc["paths"]["/v1/mirrago/generate-image"]["post"]["responses"]["500"]
    error_examples = server_error["content"]["application/json"]["examples"]
    assert error_examples["rate_limit"]["value"]["detail"].startswith("Rate Limit")
    assert "API-NOTES.md" in server_error["description"]
    assert "API-NOTES.md" in doc["info"]["description"]


def test_token_flow_is_an_oauth2_client_credentials_scheme(sandbox: EmbeddedSandbox) -> None:
    doc = document(sandbox)
    scheme = doc["components"]["securitySchemes"]["OAuth2ClientCredentials"]
    assert scheme["type"] == "oauth2"
    assert scheme["flows"]["clientCredentials"]["tokenUrl"] == "/oauth/token"
    for path, method in (
        ("/v1/mirrago/generate-image", "post"),
        ("/v1/mirrago/job/{job_id}", "get"),
    ):
        assert doc["paths"][path][method]["security"] == [{"OAuth2ClientCredentials": []}]
    # What Swagger UI's Authorize sends: a form body, the credentials as HTTP Basic auth.
    response = requests.post(
        f"{sandbox.base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(sandbox.client_id, sandbox.client_secret),
        timeout=TIMEOUT,
    )
    assert response.status_code == 200 and response.json()["token_type"] == "Bearer"


def test_docs_are_served_from_local_files_with_the_demo_credentials(
    sandbox: EmbeddedSandbox, make_sandbox: MakeSandbox
) -> None:
    page = requests.get(f"{sandbox.base_url}/docs", timeout=TIMEOUT).text
    assert "/docs/assets/swagger-ui-bundle.js" in page and "cdn.jsdelivr" not in page
    assert '"clientSecret": "demo-secret"' in page
    script = requests.get(f"{sandbox.base_url}/docs/assets/swagger-ui-bundle.js", timeout=TIMEOUT)
    assert script.status_code == 200 and len(script.content) > 100_000

    secret = "a-configured-secret-7Hq2ZpX9"
    private = make_sandbox(client_secret=secret)
    for path in ("/docs", "/openapi.json"):
        assert secret not in requests.get(f"{private.base_url}{path}", timeout=TIMEOUT).text


def test_print_openapi_writes_the_document_to_stdout() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "mirrago", "sandbox", "--print-openapi"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    printed = json.loads(run.stdout)
    assert printed["openapi"].startswith("3.")
    assert "/v1/mirrago/generate-image" in printed["paths"]
    assert "OAuth2ClientCredentials" in printed["components"]["securitySchemes"]
