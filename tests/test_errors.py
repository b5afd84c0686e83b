"""The error classes: one home, no builtin names shadowed, and the response -> error mapping."""

from __future__ import annotations

import builtins
import importlib
import inspect
import json
import pkgutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

import mirrago

BUILTIN_EXCEPTIONS = frozenset(
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
)


def _mirrago_modules() -> list[str]:
    names = [mirrago.__name__]
    for info in pkgutil.walk_packages(mirrago.__path__, prefix="mirrago."):
        if info.name.rsplit(".", 1)[-1] != "__main__":  # running it would start the CLI
            names.append(info.name)
    return names


def test_no_class_in_mirrago_is_named_after_a_builtin_exception():
    # `except ConnectionError` must mean the builtin wherever it is read.
    shadowing = []
    for name in _mirrago_modules():
        module = importlib.import_module(name)
        for attribute, value in vars(module).items():
            if not inspect.isclass(value) or value.__module__ != name:
                continue  # imported from elsewhere: checked in its own module
            if value.__name__ in BUILTIN_EXCEPTIONS or attribute in BUILTIN_EXCEPTIONS:
                shadowing.append(f"{name}.{attribute}")
    assert shadowing == []


def test_every_error_class_outside_the_sandbox_is_defined_in_mirrago_errors():
    # One home for errors; the sandbox is a separate server and keeps its own.
    elsewhere = []
    for name in _mirrago_modules():
        if name.startswith("mirrago.sandbox"):
            continue
        for attribute, value in vars(importlib.import_module(name)).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == name
                and name != "mirrago.errors"
            ):
                elsewhere.append(f"{name}.{attribute}")
    assert elsewhere == []


def test_every_error_class_is_exported_from_mirrago_errors():
    from mirrago import errors

    defined = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value)
        and issubclass(value, BaseException)
        and value.__module__ == errors.__name__
    }
    assert defined <= set(errors.__all__)
    assert {
        "MirragoError",
        "AuthenticationError",
        "BadRequestError",
        "NotFoundError",
        "InsufficientCreditsError",
        "RateLimitError",
        "ServerError",
        "ServiceConnectionError",
        "ServiceTimeoutError",
        "SubmissionUncertainError",
        "ImageError",
    } <= defined
    # The batch file's, the outbound policy's and the CLI's errors keep the builtin base their
    # callers catch them by; every other one is a MirragoError.
    other_bases = {
        "BatchFileError": ValueError,
        "FetchError": Exception,
        "RefusedAddress": errors.FetchError,
        "UsageError": Exception,
    }
    assert set(other_bases) <= defined
    for name in defined:
        base = other_bases.get(name, errors.MirragoError)
        assert issubclass(getattr(errors, name), base), name


def test_a_timeout_is_a_kind_of_connection_error_and_neither_is_the_builtin():
    from mirrago.errors import ServiceConnectionError, ServiceTimeoutError

    assert issubclass(ServiceTimeoutError, ServiceConnectionError)
    assert not issubclass(ServiceConnectionError, builtins.ConnectionError)
    assert not issubclass(ServiceTimeoutError, builtins.TimeoutError)


def test_the_errors_module_needs_neither_the_ledger_nor_the_ui_nor_the_sandbox():
    code = (
        "import sys, mirrago.errors\n"
        "heavy = ('mirrago.ledger', 'mirrago.runner', 'mirrago.client', 'mirrago.sandbox',"
        " 'mirrago.ui', 'streamlit', 'sqlalchemy')\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(heavy))\n"
        "print(loaded)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


# --------------------------------------------------------------------- response -> error


class _Answers(BaseHTTPRequestHandler):
    """Answers every request with the status, headers and body the test put on the server."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        status, headers, body = self.server.answer  # type: ignore[attr-defined]
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def answering() -> Iterator[Callable[..., requests.Response]]:
    """`answering(status, body, headers)`: a real response with those, from a loopback server."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def answer(status: int, body: object = b"", headers: dict[str, str] | None = None):
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        server.answer = (status, headers or {}, body)  # type: ignore[attr-defined]
        return requests.get(f"http://127.0.0.1:{server.server_port}/job/1", timeout=10)

    yield answer
    server.shutdown()
    server.server_close()


def test_each_status_gives_its_own_error_class(answering):
    from mirrago import errors

    expected = {
        400: errors.BadRequestError,
        401: errors.AuthenticationError,
        402: errors.InsufficientCreditsError,
        403: errors.AuthenticationError,
        404: errors.NotFoundError,
        410: errors.NotFoundError,
        413: errors.BadRequestError,
        422: errors.BadRequestError,
        429: errors.RateLimitError,
        500: errors.ServerError,
        503: errors.ServerError,
    }
    for status, kind in expected.items():
        error = errors.error_from_response(answering(status, {"detail": "no"}))
        assert type(error) is kind, status
        assert error.status_code == status


def test_the_servers_words_are_kept_without_any_secret(answering):
    from mirrago.errors import error_from_response

    response = answering(400, {"detail": "bad client s3cret-value for token tok-123"})
    error = error_from_response(response, secrets=("s3cret-value", "tok-123", None))

    assert str(error) == (
        "The Mirrago server rejected the request (400): bad client *** for token ***."
    )
    assert "s3cret" not in repr(error) and "tok-123" not in repr(error)


def test_validation_errors_name_their_field_and_an_html_page_says_nothing(answering):
    from mirrago.errors import error_from_response

    fields = [{"loc": ["body", "target_image"], "msg": "field required"}]
    assert str(error_from_response(answering(422, {"detail": fields}))) == (
        "The Mirrago server rejected the request (422): target_image: field required."
    )
    page = b"<html><body>Bad Gateway</body></html>"
    assert str(error_from_response(answering(502, page, {"Content-Type": "text/html"}))) == (
        "The Mirrago server failed (502: Bad Gateway). "
        "Try again in a moment; if it keeps happening, check the service status."
    )


def test_a_rate_limit_carries_its_retry_after(answering):
    from mirrago.errors import RateLimitError, error_from_response

    error = error_from_response(answering(429, {"detail": "slow down"}, {"Retry-After": "7"}))

    assert isinstance(error, RateLimitError) and error.retry_after == 7.0
    assert str(error) == (
        "The Mirrago server is rate-limiting requests (429: slow down); wait 7 s and try again."
    )


def test_a_plain_5xx_to_a_job_creating_request_is_uncertain(answering):
    from mirrago.errors import ServerError, SubmissionUncertainError, error_from_response

    error = error_from_response(answering(500, {"detail": "boom"}), idempotent=False)

    assert isinstance(error, SubmissionUncertainError)
    assert isinstance(error.cause, ServerError) and error.status_code == 500
    assert "the server answered 500 (boom)" in str(error)


# --------------------------------------------------------------------- transport -> error


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_refused_connection_is_a_service_connection_error_even_for_a_submit():
    from mirrago.errors import ServiceConnectionError, error_from_transport

    port = _free_port()
    with pytest.raises(requests.ConnectionError) as caught:
        requests.get(f"http://127.0.0.1:{port}/", timeout=5)
    for idempotent in (True, False):  # never sent: no job can exist
        error = error_from_transport(
            caught.value, host=f"127.0.0.1:{port}", idempotent=idempotent, read_timeout=5
        )
        assert type(error) is ServiceConnectionError
        assert str(error) == (
            f"Could not reach the Mirrago server at 127.0.0.1:{port}: the connection was "
            "refused. Check MIRRAGO_BASE_URL and your network."
        )


def test_no_answer_in_time_is_a_timeout_or_for_a_submit_uncertain():
    from mirrago.errors import ServiceTimeoutError, SubmissionUncertainError, error_from_transport

    with socket.socket() as silent:  # listens, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        host = f"127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(requests.ReadTimeout) as caught:
            requests.get(f"http://{host}/", timeout=(5, 0.2))

    read = error_from_transport(caught.value, host=host, idempotent=True, read_timeout=0.2)
    submit = error_from_transport(caught.value, host=host, idempotent=False, read_timeout=0.2)

    assert type(read) is ServiceTimeoutError
    assert str(read).startswith(f"The Mirrago server at {host} did not answer within 0.2 s.")
    assert isinstance(submit, SubmissionUncertainError)
    assert isinstance(submit.cause, ServiceTimeoutError)
    assert "no answer within 0.2 s" in str(submit)
