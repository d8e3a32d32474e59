"""``vision-platform settings show|set`` and ``settings credentials set|clear|test``: the Settings dialog's twin.

The secret key is never an argument (shell history, process lists): ``credentials set`` reads it
from a prompt on a terminal, or from the first line of standard input when piped.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import sys
from typing import Any

from core.commands import open_cli_store, print_json, service_command
from core.services import ServiceError
from core.services import settings as settings_service


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("settings", help="show or change settings and storage keys")
    commands = parser.add_subparsers(dest="settings_command", required=True)
    show = commands.add_parser("show", help="every setting, and where the storage keys are")
    show.add_argument("--json", action="store_true", help="print JSON for scripts")
    show.set_defaults(handler=cmd_show)
    change = commands.add_parser("set", help="change one setting, e.g. `settings set offline_mode false`")
    change.add_argument("name", help=f"one of: {', '.join(settings_service.setting_names())}")
    change.add_argument("value")
    change.set_defaults(handler=cmd_set)

    credentials = commands.add_parser("credentials", help="the R2/S3 access keys (OS keyring or a 0600 file)")
    actions = credentials.add_subparsers(dest="credentials_command", required=True)
    keep = actions.add_parser("set", help="save keys; the secret is read from a prompt or standard input")
    keep.add_argument("access_key_id")
    keep.set_defaults(handler=cmd_credentials_set)
    actions.add_parser("clear", help="remove saved keys").set_defaults(handler=cmd_credentials_clear)
    actions.add_parser("test", help="list the bucket with the saved settings and keys").set_defaults(
        handler=cmd_credentials_test)


@service_command
def cmd_show(args: argparse.Namespace) -> int:
    values = dataclasses.asdict(settings_service.load_settings(open_cli_store()))
    status = settings_service.credentials_status()
    if args.json:
        print_json({**values, "credentials": dataclasses.asdict(status)})
        return 0
    width = max(len(name) for name in values)
    for name, value in values.items():
        print(f"{name:<{width}}  {_text(value)}")
    keys = f"access key {status.access_key_id} (from {status.source})" if status.access_key_id else "none saved"
    print(f"{'storage keys':<{width}}  {keys}\n{'':<{width}}  {status.backend_notice}")
    return 0


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if value != "" else "(empty)"


@service_command
def cmd_set(args: argparse.Namespace) -> int:
    saved = settings_service.update_settings(open_cli_store(), {args.name: args.value})
    print(f"{args.name} = {_text(getattr(saved, args.name))}")
    return 0


def _read_secret() -> str:
    if sys.stdin.isatty():
        return getpass.getpass("Secret access key: ")
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise ServiceError("No secret access key on standard input: pipe it in, or run this on a terminal to be asked.")
    return line


@service_command
def cmd_credentials_set(args: argparse.Namespace) -> int:
    print(settings_service.set_credentials(args.access_key_id, _read_secret()))
    return 0


@service_command
def cmd_credentials_clear(args: argparse.Namespace) -> int:
    settings_service.clear_credentials()
    status = settings_service.credentials_status()
    left = f" (keys from {status.source} are still used)" if status.access_key_id else ""
    print(f"saved keys removed{left}")
    return 0


@service_command
def cmd_credentials_test(args: argparse.Namespace) -> int:
    settings = settings_service.load_settings(open_cli_store())
    print(settings_service.check_connection(settings))
    return 0
