"""How the app starts its own processes: one command line builder and one environment.

Every process the app starts — the training worker, the warm inference worker, the model-list and
sysinfo helpers, ``mlflow ui`` — gets :func:`child_env`; the worker also applies
:func:`apply_offline_env` to itself, for when something else started it. A job never waits on the
network and nothing reports usage anywhere:

- Hugging Face and Ultralytics run offline (``HF_HUB_OFFLINE``, ``YOLO_OFFLINE`` — the latter also
  switches off Ultralytics' analytics); these defaults can be overridden by the user's environment.
- The app never installs anything at run time: ``YOLO_AUTOINSTALL=false`` is always set (Ultralytics
  would otherwise run uv/pip for a missing requirement mid-training), whatever the user's environment.
- MLflow's usage telemetry (MLflow ≥ 3.2 sends it from every process that imports ``mlflow``,
  the ``mlflow ui`` server included) is always off: ``mlflow.telemetry.utils.is_telemetry_disabled``
  honours ``MLFLOW_DISABLE_TELEMETRY`` and ``DO_NOT_TRACK=true``; both are set, not defaulted.

Secrets stay with the process that uses them. The training worker never uploads (the runner does),
the inference worker and helpers never talk to a server, and ``mlflow ui`` reads a local store: so
:func:`child_env` drops every secret variable (``core.storage.credentials.SECRET_ENV_NAMES``: the
AWS / R2 keys, MLflow's tracking login) and the login inside ``MLFLOW_TRACKING_URI``. A child that
really needs one names it (``child_env(keep_secrets=("AWS_ACCESS_KEY_ID", …))``): an explicit opt-in
visible at the call.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from pathlib import Path

from core import paths
from core.storage import credentials

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Defaults a user may override in their own environment.
OFFLINE_DEFAULTS = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "YOLO_OFFLINE": "1",
    "MPLBACKEND": "Agg",
}
# Always set: the app never reports usage.
NO_TELEMETRY = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
}
# Always set: the app never runs pip (or uv, apt) at run time.
NO_INSTALLS = {"YOLO_AUTOINSTALL": "false"}


def subcommand(*args: str) -> list[str]:
    """The command line of ``vision-platform ARGS…``: the frozen executable itself, else this
    interpreter with ``-m vision_platform`` (so a venv's app never runs another install's code)."""
    if getattr(sys, "frozen", False):
        return [sys.executable, *args]
    return [sys.executable, "-m", "vision_platform", *args]


def disable_telemetry(environ: MutableMapping[str, str]) -> None:
    """Turn usage telemetry off in ``environ`` (before ``import mlflow`` when it is ``os.environ``)."""
    environ.update(NO_TELEMETRY)


def apply_offline_env(environ: MutableMapping[str, str]) -> None:
    """Offline defaults and no telemetry, set into ``environ`` (``os.environ`` or a child's copy)."""
    for name, value in OFFLINE_DEFAULTS.items():
        environ.setdefault(name, value)
    # Ultralytics' settings.json and caches are the app's own, never the user's global ones.
    environ.setdefault("YOLO_CONFIG_DIR", str(paths.data_dir() / "ultralytics"))
    environ.update(NO_INSTALLS)
    disable_telemetry(environ)


def without_secrets(environ: Mapping[str, str], keep: Iterable[str] = ()) -> dict[str, str]:
    """A copy of ``environ`` without secret variables (but those named in ``keep``), and without the
    login inside ``MLFLOW_TRACKING_URI``."""
    kept = set(keep)
    env = {name: value for name, value in environ.items() if name in kept or not credentials.is_secret_env(name)}
    uri = env.get(credentials.ENV_TRACKING_URI)
    if uri and credentials.ENV_TRACKING_URI not in kept:
        env[credentials.ENV_TRACKING_URI] = credentials.strip_login(uri)
    return env


def child_env(*, keep_secrets: Iterable[str] = ()) -> dict[str, str]:
    """The environment of every process the app starts: ours, offline, without secrets (but the
    ones named in ``keep_secrets``), and able to import our packages from any working directory."""
    env = without_secrets(os.environ, keep_secrets)
    apply_offline_env(env)
    env["VP_HOME"] = str(paths.data_dir())
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
    return env
