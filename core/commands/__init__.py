"""Grouped CLI commands (``vision-platform project|settings|…``): thin wrappers over ``core.services``.

Each module has a ``register(subparsers)`` that ``core.cli.build_parser`` calls. A handler parses
nothing itself: it calls one service and prints the outcome. Every ``ServiceError`` becomes
``error: <message>`` on stderr and exit code 2, the same for every command (:func:`service_command`).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable
from typing import Any

from core.services import ServiceError, Store

EXIT_USAGE = 2

Handler = Callable[[argparse.Namespace], int]


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE


def print_warning(message: str) -> None:
    """A service's notice for the user (e.g. a cached copy used unchecked), as ``warning: …`` on stderr."""
    print(f"warning: {message}", file=sys.stderr)


def service_command(handler: Handler) -> Handler:
    """Turn a ServiceError raised by ``handler`` into ``error: …`` on stderr and exit code 2."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except ServiceError as exc:
            return fail(str(exc))

    return run


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def open_cli_store() -> Store:
    from core.services.settings import open_data_store

    return open_data_store()
