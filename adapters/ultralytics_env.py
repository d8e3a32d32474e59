"""Import Ultralytics so that a job never waits on the network.

Everything here must happen before (or right after) ``import ultralytics``:

- ``YOLO_OFFLINE=1`` makes ``ultralytics.utils.ONLINE`` false at import, which switches off the
  pip-update check, Google-Analytics events and Sentry; ``YOLO_AUTOINSTALL=false`` stops pip runs.
- ``YOLO_CONFIG_DIR`` under our data dir: Ultralytics' ``settings.json`` (and its font/weights
  cache) is ours, never the user's global one, and can be changed without side effects.
- Integrations (MLflow, W&B, ClearML, Comet, DVC, Ray Tune, TensorBoard) are switched off in those
  settings: our tracking layer logs the run once, from the events the adapter reports. The
  Ultralytics Platform callback only acts with an API key, so the key is removed from the env.
- Fonts: ``check_det_dataset`` calls ``check_font("Arial.ttf")`` on *every* detect/segment/pose run
  (plots or not) and downloads it when missing. We copy matplotlib's DejaVu Sans (Bitstream Vera
  licence + public-domain changes: redistribution allowed; we only rename the file, the font keeps its
  own family name) into the config dir as ``Arial.ttf`` and ``Arial.Unicode.ttf``, so plots work
  offline and nothing is fetched.
- AMP: the trainer's ``check_amp`` loads ``yolo26n.pt`` (downloading it when missing, which offline
  can hang, ultralytics #7645). We wrap it: when the weights are not cached the check is skipped and
  AMP stays as the job asked; when they are cached the original check runs.
- ``weights_dir``/``runs_dir``/``datasets_dir`` are pinned under the config dir (Ultralytics derives
  their defaults from the cwd or the nearest git checkout, which differ between worker runs).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

from core.launch import apply_offline_env

log = logging.getLogger(__name__)

_INTEGRATIONS = ("clearml", "comet", "dvc", "mlflow", "raytune", "tensorboard", "wandb", "sync", "hub", "neptune")
_FONT_NAMES = ("Arial.ttf", "Arial.Unicode.ttf")
_configured = False


def apply_env() -> None:
    """Environment for Ultralytics; effective only before its first import in this process."""
    apply_offline_env(os.environ)
    # The Platform callback streams to ultralytics.com when a key is present; our jobs never do.
    os.environ.pop("ULTRALYTICS_API_KEY", None)


def _matplotlib_font() -> Path | None:
    """matplotlib's DejaVuSans.ttf, found without importing matplotlib (≈0.4 s a job would pay for
    nothing: Ultralytics imports it only to draw plots)."""
    import importlib.util

    spec = importlib.util.find_spec("matplotlib")
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        candidate = Path(folder) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        if candidate.is_file():
            return candidate
    return None


def _provision_fonts(config_dir: Path) -> None:
    source = _matplotlib_font()
    if source is None:
        log.warning("matplotlib's DejaVuSans.ttf is missing; Ultralytics plots may try to download Arial.ttf")
        return
    config_dir.mkdir(parents=True, exist_ok=True)
    for name in _FONT_NAMES:
        target = config_dir / name
        if not target.is_file() or target.stat().st_size != source.stat().st_size:
            tmp = target.with_suffix(".tmp")
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)


def _pin_settings(utils: ModuleType) -> None:
    settings: Any = utils.SETTINGS
    updates: dict[str, Any] = {key: False for key in _INTEGRATIONS if key in settings.defaults and settings.get(key)}
    if settings.get("api_key"):
        updates["api_key"] = ""
    base = Path(utils.USER_CONFIG_DIR)
    # The config dir is the app's own: its folders never depend on the cwd or a git checkout nearby.
    for key in ("weights_dir", "runs_dir", "datasets_dir"):
        wanted = str(base / key.removesuffix("_dir"))
        if key in settings.defaults and settings.get(key) != wanted:
            updates[key] = wanted
    if updates:
        settings.update(updates)
    utils.WEIGHTS_DIR = Path(settings["weights_dir"])  # type: ignore[attr-defined]  # check_amp reads this global


def _skip_amp_check_when_offline() -> None:
    import ultralytics.engine.trainer as trainer_module

    original = trainer_module.check_amp
    if getattr(original, "_vp_wrapped", False):
        return

    def check_amp(model: Any) -> bool:
        from ultralytics.utils import WEIGHTS_DIR

        if not (Path(WEIGHTS_DIR) / "yolo26n.pt").is_file():
            log.info("AMP check skipped: yolo26n.pt is not cached and jobs never download; AMP stays on")
            return True
        result: bool = original(model)
        return result

    check_amp._vp_wrapped = True  # type: ignore[attr-defined]
    trainer_module.check_amp = check_amp


def import_ultralytics() -> ModuleType:
    """``import ultralytics`` with the offline set-up above (idempotent)."""
    global _configured
    apply_env()
    import ultralytics
    import ultralytics.utils as utils

    if not _configured:
        _provision_fonts(Path(utils.USER_CONFIG_DIR))
        _pin_settings(utils)
        _skip_amp_check_when_offline()
        _undo_pil_open_patch()
        _configured = True
    return ultralytics


def _undo_pil_open_patch() -> None:
    """Ultralytics replaces ``PIL.Image.open`` with a version that, on an unidentifiable file, tries to
    install and import pi-heif. Offline (YOLO_AUTOINSTALL=false) that raises ModuleNotFoundError, so a
    corrupt image would crash our health checks instead of being reported. Put Pillow's own back."""
    import ultralytics.utils.patches as patches
    from PIL import Image

    original = getattr(patches, "_image_open", None)
    if original is not None and Image.open is not original:
        Image.open = original


def weights_dir() -> Path:
    """Ultralytics' weights cache (``SETTINGS['weights_dir']``), after the set-up above."""
    import_ultralytics()
    from ultralytics.utils import SETTINGS

    return Path(SETTINGS["weights_dir"])
