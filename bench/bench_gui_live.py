"""Live GUI benchmarks: charts under streaming metrics, big-series redraw, slider re-filter, warm inference.

    .venv/bin/python bench/bench_gui_live.py [--seconds 10] [--model resnet18 --image-size 224] [--skip-inference]

1. Event-loop stall: a 10 ms QTimer probe records the longest gap of the GUI event loop while a
   thread streams 20 metric events/s (queued signal, as the job queue does) into the live charts,
   once from empty and once on top of 100k points per series; baseline: the same charts idle.
2. Redraw of a 100k-point series (append one point, push to the curve, paint synchronously), with
   the app's settings (peak downsampling + clip to view) and, as the baseline, without them.
3. Slider re-filter: ``filter_predictions`` + redrawing the overlay for 300 raw boxes (the worker's
   max), per slider move.
4. Warm single-image inference: the canvas path (image decode + ``InferenceClient.predict`` through
   the warm worker process) vs the adapter's own ``run_inference`` in this process, same checkpoint,
   alternated. Trains a 1-epoch model first (timm; the bench script may import adapters, the app not).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._table import print_table  # noqa: E402

FRAME_MS = 16.0
STALL_TARGET_MS = 50.0


def _app() -> Any:
    from PySide6.QtWidgets import QApplication

    return QApplication.instance() or QApplication([])


class Probe:
    """A 10 ms timer; the longest gap between its ticks is the worst stall of the event loop."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.last = 0.0
        self.gaps: list[float] = []

    def _tick(self) -> None:
        now = time.perf_counter()
        if self.last:
            self.gaps.append((now - self.last) * 1000)
        self.last = now

    def run(self, seconds: float) -> tuple[float, float]:
        app = _app()
        self.last = 0.0
        self.gaps = []
        self.timer.start()
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.001)
        self.timer.stop()
        return max(self.gaps), statistics.quantiles(self.gaps, n=100)[98]


def _charts(preload: int) -> Any:
    import numpy as np

    from app.models.chart_data import ChartData, SeriesBuffer
    from app.widgets.live_charts import LiveCharts

    charts = LiveCharts()
    charts.resize(1000, 600)
    charts.show()
    data = ChartData(1)
    if preload:
        x = np.arange(1, preload + 1, dtype=float)
        rng = np.random.default_rng(0)
        for name in ("train/loss", "train/box_loss", "train/cls_loss", "lr"):
            buffer = data.series[("step", name)] = SeriesBuffer()
            buffer.extend(x, rng.random(preload))
        data.last_x["step"] = float(preload)
    charts.set_data(data)
    _app().processEvents()
    return charts


def bench_stall(seconds: float) -> list[tuple[str, str, str, str]]:
    from PySide6.QtCore import QObject, Signal

    class Events(QObject):
        received = Signal(int, object)

    rows = []
    for preload in (0, 100_000):
        charts = _charts(preload)
        probe = Probe()
        idle_max, idle_p99 = probe.run(seconds / 2)
        events = Events()

        def on_event(job_id: int, event: dict[str, Any], c: Any = charts) -> None:
            c.add_metrics(event["kind"], event["epoch"], event["step"], event["values"])

        events.received.connect(on_event)
        stop = threading.Event()

        def stream(start: int = preload, events: Events = events, stop: threading.Event = stop) -> None:
            step = start
            while not stop.is_set():
                step += 1
                values = {"train/loss": 1.0 / step, "train/box_loss": 0.5, "train/cls_loss": 0.3, "lr": 0.01}
                events.received.emit(1, {"kind": "step", "epoch": 1 + step // 100, "step": step, "values": values})
                if step % 20 == 0:
                    events.received.emit(1, {"kind": "epoch", "epoch": step // 20, "step": None,
                                             "values": {"val/map50": 0.5, "val/loss": 1.0}})
                time.sleep(0.05)  # 20 events/s

        thread = threading.Thread(target=stream, daemon=True)
        thread.start()
        busy_max, busy_p99 = probe.run(seconds)
        stop.set()
        thread.join()
        label = "from empty" if not preload else "on 100k points/series"
        rows.append((f"event-loop max stall, 20 ev/s, {label}", f"{busy_max:.1f} ms (p99 {busy_p99:.1f})",
                     f"idle {idle_max:.1f} ms (p99 {idle_p99:.1f}); target <= {STALL_TARGET_MS:.0f}",
                     "ok" if busy_max <= STALL_TARGET_MS else "SLOW"))
        rows.append((f"  redraws / points drawn ({label})", f"{charts.redraws} / {charts.data.point_count()}", "", ""))
        charts.close()
    return rows


def _time_redraws(charts: Any, panel: Any, step: int, count: int = 30) -> tuple[tuple[float, float], int]:
    """(median, max) ms of adding one step and redrawing the panel, ``count`` times; the last step."""
    times = []
    for _ in range(count):
        step += 1
        charts.add_metrics("step", 1, step, {"train/loss": 0.5, "train/box_loss": 0.4, "train/cls_loss": 0.3})
        started = time.perf_counter()
        charts.redraw()
        panel.viewport().repaint()
        times.append((time.perf_counter() - started) * 1000)
    return (statistics.median(times), max(times)), step


def bench_redraw() -> list[tuple[str, str, str, str]]:
    charts = _charts(100_000)
    panel = charts.panels["loss_step"]
    results = {}
    for mode in ("app", "baseline"):
        for item in panel.curves.values():
            item.setDownsampling(auto=mode == "app", method="peak")
            item.setClipToView(mode == "app")
        if mode == "app":  # the user's typical view while training: the latest part of the run
            panel.getPlotItem().setXRange(90_000, 100_000 + 200, padding=0)
        step = 100_000 + (0 if mode == "app" else 100)
        results[mode], step = _time_redraws(charts, panel, step)
    # Whole-run view (auto range over all 100k points): downsampling alone must keep it fast.
    panel.getPlotItem().enableAutoRange()
    for item in panel.curves.values():
        item.setDownsampling(auto=True, method="peak")
        item.setClipToView(True)
    whole, step = _time_redraws(charts, panel, step)
    charts.close()
    app_med, app_max = results["app"]
    base_med, base_max = results["baseline"]
    return [
        ("redraw 100k pts x3 series, last 10k in view", f"{app_med:.1f} ms (max {app_max:.1f})",
         f"no downsampling/clip {base_med:.1f} ms (max {base_max:.1f}); target <= {FRAME_MS:.0f}",
         "ok" if app_med <= FRAME_MS else "SLOW"),
        ("redraw 100k pts x3 series, whole run in view", f"{whole[0]:.1f} ms (max {whole[1]:.1f})",
         f"target <= {FRAME_MS:.0f}", "ok" if whole[0] <= FRAME_MS else "SLOW"),
    ]


def bench_refilter(count: int = 300) -> list[tuple[str, str, str, str]]:
    import numpy as np
    from PySide6.QtGui import QImage

    from app.widgets.inference_canvas import InferenceCanvas
    from core.inference import filter_predictions

    rng = np.random.default_rng(1)
    boxes = []
    for i in range(count):
        x, y = rng.uniform(0, 560, 2)
        w, h = rng.uniform(20, 120, 2)
        boxes.append({"x1": x, "y1": y, "x2": x + w, "y2": y + h, "confidence": float(rng.uniform(0.01, 1.0)),
                      "class_id": i % 5, "label": f"class{i % 5}"})
    raw = {"task": "detect", "image_size": [640, 640], "boxes": boxes, "masks": [], "keypoints": [], "top_k": []}
    canvas = InferenceCanvas()
    canvas.resize(900, 700)
    canvas.show()
    image = QImage(640, 640, QImage.Format.Format_RGB32)
    image.fill(0x808080)
    canvas.set_image(image)
    _app().processEvents()
    started = time.perf_counter()
    canvas.set_predictions(filter_predictions(raw, conf=0.0, iou=0.5), raw=raw)  # items built once per image
    canvas.viewport().repaint()
    build_ms = (time.perf_counter() - started) * 1000
    filter_times, total_times = [], []
    for value in list(range(0, 100, 2)) * 2:
        started = time.perf_counter()
        filtered = filter_predictions(raw, conf=value / 100, iou=0.5)
        middle = time.perf_counter()
        canvas.set_predictions(filtered, raw=raw)
        canvas.viewport().repaint()
        done = time.perf_counter()
        filter_times.append((middle - started) * 1000)
        total_times.append((done - started) * 1000)
    canvas.close()
    med, worst = statistics.median(total_times), max(total_times)
    return [(f"slider re-filter, {count} raw boxes (filter+draw+paint)", f"{med:.1f} ms (max {worst:.1f})",
             f"filter alone {statistics.median(filter_times):.1f} ms; first draw of the image's items "
             f"{build_ms:.0f} ms; target <= {FRAME_MS:.0f}",
             "ok" if worst <= FRAME_MS else ("ok (median)" if med <= FRAME_MS else "SLOW"))]


def bench_inference(model: str, image_size: int, repeats: int) -> list[tuple[str, str, str, str]]:
    home = Path(tempfile.mkdtemp(prefix="vp-bench-live-"))
    os.environ["VP_HOME"] = str(home)
    from adapters.inference_server import _SilentReporter
    from adapters.timm_adapter import TimmAdapter
    from app.pages.inference_page import read_image
    from core.config import config_from_dict
    from core.db.engine import open_store
    from core.inference import InferenceClient
    from core.jobs import store as job_store
    from core.jobs.runner import JobRunner
    from tests.helpers.datasets_gen import make_imagefolder

    data = make_imagefolder(home / "data", classes=("red", "green", "blue"), per_class=4, size=image_size)
    store = open_store()
    config = config_from_dict({"dataset": str(data), "model": model, "epochs": 1, "batch_size": 4,
                               "image_size": image_size, "pretrained": False})
    job_id = job_store.create_job(store, config)
    status = JobRunner(store).run(job_id)
    best = job_store.latest_checkpoint(store, job_id, "best")
    if status != "completed" or best is None:
        return [("warm inference", f"training failed: {job_store.get_job(store, job_id).error_message}", "", "FAIL")]
    image = sorted((data / "red").iterdir())[0]
    client = InferenceClient()
    client.load(Path(best.path), framework="timm", trusted=True)
    adapter = TimmAdapter(config, home / "infer", _SilentReporter())
    adapter.load_checkpoint(Path(best.path))
    for _ in range(3):  # warm both
        client.predict(image)
        adapter.run_inference(image, top_k=5)
    canvas_times, direct_times = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        read_image(image)
        client.predict(image)
        canvas_times.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        adapter.run_inference(image, top_k=5)
        direct_times.append((time.perf_counter() - started) * 1000)
    client.close()
    canvas_med, direct_med = statistics.median(canvas_times), statistics.median(direct_times)
    ratio = canvas_med / direct_med
    return [(f"warm inference {model}@{image_size}: canvas path", f"{canvas_med:.1f} ms",
             f"in-process run_inference {direct_med:.1f} ms; ratio {ratio:.2f} (target <= 1.1)",
             "ok" if ratio <= 1.1 else "SLOW")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="streaming time per stall measurement")
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--skip-inference", action="store_true")
    args = parser.parse_args(argv)
    _app()
    rows = bench_stall(args.seconds)
    rows += bench_redraw()
    rows += bench_refilter(30)
    rows += bench_refilter(300)
    if not args.skip_inference:
        rows += bench_inference(args.model, args.image_size, args.repeats)
    print_table(f"Live GUI (Qt {os.environ.get('QT_QPA_PLATFORM')}, {os.cpu_count()} CPUs)", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
