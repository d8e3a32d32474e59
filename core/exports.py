"""The contract of an exported model, written down once: formats, file names, the model card, tolerances.

Three parties share it without importing each other: the export worker (``adapters/export.py``)
writes the file and its card, the export service (``core/services/export.py``) records and uploads
them, and the inference worker loads them. A model card is a small JSON beside the exported file
(``<file>.card.json``) that makes the file usable without this app: what goes in (size, layout,
normalisation), what comes out (names, layout, the post-processing it needs), the sha256 of the
checkpoint it came from, and the parity result against that checkpoint.

Parity tolerance (documented, :data:`TOLERANCES`): the export is "verified" when, on real
validation images of the job, the largest absolute difference of any raw output is at most
``atol + rtol * max|reference|`` and the task-level agreement is complete: every image's top-1 class
agrees (classification); every reference box (score >= :data:`MATCH_SCORE`) has an exported box of
the same class at IoU >= :data:`MATCH_IOU` whose score differs by at most ``score``
(detection); matched instance masks have a mean IoU >= :data:`MASK_IOU` (segmentation); every keypoint
of a matched instance is within :data:`KEYPOINT_DISTANCE_PX` pixels of the reference's (pose). Anything
else is kept, with ``verified: false``, a warning and the numbers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, NotRequired, TypedDict, get_args

ExportFormat = Literal["onnx", "torchscript"]
PARITY_FORMATS: tuple[ExportFormat, ...] = get_args(ExportFormat)  # formats this app verifies
SUFFIXES: dict[str, str] = {"onnx": ".onnx", "torchscript": ".torchscript"}
CARD_SUFFIX = ".card.json"
EXPORTS_DIR = "exports"  # inside a job's run directory
ARTIFACT_KIND_PREFIX = "export:"  # artifacts rows: "export:onnx", "export:onnx:card"
MIN_OPSET = 17
ONNX_OPSET = 18
CARD_FORMAT = 1

MATCH_IOU = 0.9
MATCH_SCORE = 0.005  # boxes compared: the reference's at or above this score (low: tiny models score low)
MASK_IOU = 0.9
KEYPOINT_DISTANCE_PX = 1.0  # pose: largest distance of a matched instance's keypoint, in image pixels
TOLERANCES: dict[str, dict[str, float]] = {
    "fp32": {"atol": 1e-3, "rtol": 1e-3, "score": 0.01},
    "fp16": {"atol": 5e-2, "rtol": 2e-2, "score": 0.05},
}
# The one message of a file that is not what its card says (tests match it).
MISMATCH_MESSAGE = "does not match its model card"
CORRUPT_MESSAGE = "is not a readable ONNX model (corrupted or truncated)"


class Parity(TypedDict):
    """The parity result of one export, as recorded in its card."""

    verified: bool
    images: int
    max_abs_diff: float
    allowed_abs_diff: float
    agreement: dict[str, float]
    tolerance: dict[str, float]
    warning: str | None


class ModelCard(TypedDict):
    format: int
    export_format: str
    file: str
    file_sha256: str
    framework: str
    task: str
    model_name: str
    class_names: list[str]
    input: dict[str, Any]  # name, shape ([N, 3, H, W]; "batch" when dynamic), layout, dtype, range, resize
    normalisation: dict[str, list[float]]  # mean, std (per channel, on 0..1 values)
    outputs: list[dict[str, Any]]  # name, shape, meaning
    post_processing: str
    source_checkpoint: str
    source_sha256: str
    opset: NotRequired[int]
    parity: Parity


def card_path(exported: str | Path) -> Path:
    exported = Path(exported)
    return exported.with_name(exported.name + CARD_SUFFIX)


def export_file_name(stem: str, fmt: str) -> str:
    return f"{stem}{SUFFIXES.get(fmt, '_' + fmt)}"


def read_card(exported: str | Path) -> ModelCard:
    """The card beside ``exported``; a clear error naming the file when it is missing or unreadable."""
    path = card_path(exported)
    try:
        card: ModelCard = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{exported} has no model card ({path.name} beside it): export it with this app") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is not a readable model card: {exc}") from None
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT or "input" not in card:
        raise ValueError(f"{path} is not a model card of this app (format {CARD_FORMAT})")
    return card


def allowed_diff(tolerance: dict[str, float], reference_scale: float) -> float:
    return float(tolerance["atol"] + tolerance["rtol"] * reference_scale)


def is_exported_model(path: str | Path) -> bool:
    """Whether ``path`` names an exported model this app can load (ONNX; TorchScript with consent)."""
    return Path(path).suffix.lower() in (SUFFIXES["onnx"], SUFFIXES["torchscript"])
