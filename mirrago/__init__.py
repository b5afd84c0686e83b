"""Mirrago Studio: client, sandbox, ledger and runner for the Mirrago virtual try-on API."""

__version__ = "0.1.0"
