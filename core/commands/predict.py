"""``vision-platform predict MODEL_OR_JOB IMAGE_OR_DIR…``: the Inference page, headless.

Runs the same warm inference worker and the same confidence/IoU filter as the canvas, then writes
DICE (labelme JSON beside each image, or a DICE folder under ``--out``), COCO or CSV. On a terminal
a progress bar (tqdm) runs on stderr; piped, each image is one plain line on stdout, for logs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from core.commands import open_cli_store, service_command
from core.rundir import CHECKPOINT_KINDS
from core.services import ServiceError
from core.services.inference import DEFAULT_CONF, DEFAULT_IOU, PREDICTION_FORMATS, ImagePrediction
from core.trust import CONSENT_MARKER


class _Progress:
    """A tqdm bar on a terminal; one line per image when the output is piped."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.bar: Any = None

    def __call__(self, item: ImagePrediction, done: int, total: int) -> None:
        from core.services.inference import summary

        text = f"{item.image}: " + (f"error: {item.error}" if item.result is None else summary(item.result))
        if not self.tty:
            print(text, flush=True)
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="image", file=self.stream, dynamic_ncols=True)
        if item.error:
            self.bar.write(text, file=self.stream)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@service_command
def cmd_predict(args: argparse.Namespace) -> int:
    from core.services.checkpoints import resolve_model
    from core.services.inference import predict_and_write

    choice = resolve_model(open_cli_store(), args.model, kind=args.kind, trusted=args.trust)
    progress = _Progress()
    try:
        items, report = predict_and_write(choice, args.inputs, fmt=args.format, out_dir=args.out, conf=args.conf,
                                          iou=args.iou, trusted=args.trust or None, device=args.device,
                                          overwrite=args.overwrite, on_image=progress)
    except ServiceError as exc:
        if CONSENT_MARKER in str(exc):
            raise ServiceError(f"{exc} (pass --trust to load it anyway)") from None
        raise
    finally:
        progress.close()
    failed = [item for item in items if item.error]
    print(f"{len(items) - len(failed)} of {len(items)} images predicted with {choice.label}; "
          f"wrote {len(report.written)} file{'s' if len(report.written) != 1 else ''}"
          + (f" to {report.written[0].parent}" if len(report.written) == 1 or args.out else ""))
    if report.skipped:
        print(f"kept {len(report.skipped)} existing file(s) (pass --overwrite to replace them), e.g. "
              f"{report.skipped[0]}", file=sys.stderr)
    return 1 if failed else 0


def register(subparsers: Any) -> None:
    predict = subparsers.add_parser("predict", help="run a model on images or folders and write its predictions")
    predict.add_argument("model", help="job id (best.pt, else last.pt), weights file, or imported weights name")
    predict.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR")
    predict.add_argument("--conf", type=float, default=DEFAULT_CONF, help="hide predictions below this confidence")
    predict.add_argument("--iou", type=float, default=DEFAULT_IOU, help="merge same-class boxes above this overlap")
    predict.add_argument("--out", type=Path, help="output folder (DICE: images/ + annotations/; default: beside "
                                                  "the images; COCO/CSV: default the current folder)")
    predict.add_argument("--format", choices=PREDICTION_FORMATS, default="dice")
    predict.add_argument("--kind", choices=CHECKPOINT_KINDS, help="which checkpoint of a job (default: best)")
    predict.add_argument("--device", default="auto", help="auto, cpu, cuda:0, mps")
    predict.add_argument("--trust", action="store_true",
                         help="load a pickle file this app did not write and you did not import with --trust: "
                              "it can run any code stored in it (this load only; nothing is recorded)")
    predict.add_argument("--overwrite", action="store_true", help="replace existing prediction files")
    predict.set_defaults(handler=cmd_predict)
