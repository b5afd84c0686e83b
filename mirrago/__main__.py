"""Lets `python -m mirrago` run the CLI."""

from mirrago.cli import main

raise SystemExit(main())
