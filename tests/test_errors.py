"""The error classes: one home, no builtin names shadowed, and the response -> error mapping."""

from __future__ import annotations

import builtins
import importlib
import inspect
import pkgutil
import subprocess
import sys

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
    for name in defined:
        assert issubclass(getattr(errors, name), errors.MirragoError), name


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
