"""`mirrago sandbox`: run the local Mirrago server (latency, rate limit and faults from the
options), or print its OpenAPI document."""

from __future__ import annotations

import argparse

from mirrago.cli.common import EXIT_OK
from mirrago.errors import UsageError
from mirrago.sandbox.server import SandboxConfig, openapi_json, serve


def run(args: argparse.Namespace) -> int:
    config = SandboxConfig(
        latency=args.latency,
        workers=args.workers,
        rate_limit=args.rate_limit,
        submit_fail_rate=args.fail_rate,
        read_fail_rate=args.read_fail_rate,
        job_fail_rate=args.job_fail_rate,
        token_ttl=args.token_ttl,
        starting_credits=args.credits,
        seed=args.seed,
        strict_reference=args.strict_reference,
        allow_private_urls=args.allow_private_urls,
    )
    if args.print_openapi:
        print(openapi_json(config))
        return EXIT_OK
    try:
        serve(config, args.host, args.port)
    except OSError as error:
        raise UsageError(
            f"cannot listen on {args.host}:{args.port} ({error.strerror or error}); "
            "choose another with --port"
        ) from None
    return EXIT_OK
