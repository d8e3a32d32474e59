"""``vision-platform project list|create|rename|delete``: the project sidebar's twin."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from core.commands import open_cli_store, print_json, service_command
from core.services import projects


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("project", help="list, create, rename or delete projects")
    commands = parser.add_subparsers(dest="project_command", required=True)
    listing = commands.add_parser("list", help="projects with their dataset and job counts")
    listing.add_argument("--json", action="store_true", help="print JSON for scripts")
    listing.set_defaults(handler=cmd_list)
    create = commands.add_parser("create", help="a new, empty project")
    create.add_argument("name")
    create.set_defaults(handler=cmd_create)
    rename = commands.add_parser("rename", help="give a project a new name")
    rename.add_argument("project", help="the project's name or id")
    rename.add_argument("name", help="the new name")
    rename.set_defaults(handler=cmd_rename)
    delete = commands.add_parser("delete", help="remove a project's rows (files on disk stay)")
    delete.add_argument("project", help="the project's name or id")
    delete.set_defaults(handler=cmd_delete)


@service_command
def cmd_list(args: argparse.Namespace) -> int:
    rows = projects.list_projects(open_cli_store())
    if args.json:
        print_json([dataclasses.asdict(row) for row in rows])
        return 0
    width = max(len("NAME"), *(len(row.name) for row in rows))
    print(f"{'ID':>4}  {'NAME':<{width}}  {'DATASETS':>8}  {'JOBS':>5}  {'ACTIVE':>6}")
    for row in rows:
        print(f"{row.id:>4}  {row.name:<{width}}  {row.datasets:>8}  {row.jobs:>5}  {row.running:>6}")
    return 0


@service_command
def cmd_create(args: argparse.Namespace) -> int:
    created = projects.create_project(open_cli_store(), args.name)
    print(f"project {created.id} created: {created.name}")
    return 0


@service_command
def cmd_rename(args: argparse.Namespace) -> int:
    store = open_cli_store()
    current = projects.find_project(store, args.project)
    renamed = projects.rename_project(store, current.id, args.name)
    print(f"project {renamed.id} renamed: {current.name} → {renamed.name}")
    return 0


@service_command
def cmd_delete(args: argparse.Namespace) -> int:
    store = open_cli_store()
    current = projects.find_project(store, args.project)
    projects.delete_project(store, current.id)
    print(f"project {current.id} deleted: {current.name} ({current.datasets} dataset entries and "
          f"{current.jobs} job records removed; files on disk were kept)")
    return 0
