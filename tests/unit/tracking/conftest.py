from __future__ import annotations

from tests.fixtures.tracking import mlflow_db_template, mlflow_home  # noqa: F401
