"""Projects as the GUI names them: the project service, re-exported (no SQL in ``app/``).

The sidebar calls :mod:`core.services.projects` directly; this module keeps the names that GUI code
and tests have always imported from here.
"""

from __future__ import annotations

from core.services.projects import (
    DEFAULT_PROJECT,
    ProjectInfo,
    ProjectOverview,
    create_project,
    delete_project,
    list_projects,
    project_overview,
    rename_project,
)

__all__ = [
    "DEFAULT_PROJECT",
    "ProjectInfo",
    "ProjectOverview",
    "create_project",
    "delete_project",
    "list_projects",
    "project_overview",
    "rename_project",
]
