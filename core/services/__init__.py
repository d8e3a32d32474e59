"""Services: the one place every user action lives, called by the GUI (``app/``) and the CLI alike.

Each module owns one area (projects, datasets, jobs, checkpoints and weights, inference and prediction
export, settings and credentials, sync). A service function validates its input and raises
``ServiceError`` with a message that names the thing and the fix; callers show that message as it is
(a dialog in the GUI, ``error: …`` and exit code 2 in the CLI). Services never import Qt.
"""

from __future__ import annotations


class ServiceError(ValueError):
    """A user action that cannot be done as asked; the message names the thing and the fix."""


# The open data store, passed to every service as its first argument. ``app/`` holds it as an opaque
# handle (it never imports ``core.db`` or SQLAlchemy itself), so the type is re-exported here.
from core.db.engine import Store as Store  # noqa: E402
