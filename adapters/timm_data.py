"""Where a timm job's batches come from: a decoded cache when it fits the memory budget, else a stream.

Decoding every image once into one uint8 tensor makes an epoch pure tensor indexing (a plain PIL
pipeline reaches about a third of a GPU's synthetic rate), but the tensor holds N × 3 × S × S bytes.
When that is more than the job's memory budget (Settings; automatic: a share of the memory free when
the job starts, ``core.settings.memory_budget_bytes``) the job streams instead: loader processes
(``workers``; 0 = decoding threads in the training process) decode each batch's JPEGs in PIL draft
mode. Both sources decode with :func:`decode_resized` and walk the same order (:func:`epoch_order`),
so they yield the same uint8 ``(B, 3, S, S)`` batches: the choice changes speed and memory, never what
trains. A file that cannot be decoded is skipped and reported by name, in both.

On CUDA (``device`` ``cuda…``) the same choice, placed for the GPU:

- a cache that fits :data:`GPU_CACHE_SHARE` of the free GPU memory moves there: a step is an index
  on the device, no host work;
- a cache in host memory is gathered into pinned memory and copied on a side stream, so batch n+1's
  copy overlaps batch n's compute (:func:`prefetch_to_device`);
- a stream reads JPEG bytes in the loader processes and decodes each batch at once on the GPU
  (``torchvision.io.decode_jpeg(list, device=...)``, nvJPEG), resizing there; other formats, or a
  torchvision without GPU decode, are decoded by the loader processes.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from adapters.base import AdapterError
from core.files import MB

GPU_CACHE_SHARE = 0.4  # of the GPU memory free before the model exists; the rest is the model's
JPEG_MAGIC = b"\xff\xd8"
LOADER_PREFETCH_BATCHES = 2  # per loader process: bounded memory in flight
DECODE_PROBE = 32  # images decoded in one thread, and timed, before the cache's decoding is shared out
THREADS_PAY_OFF_S = 0.0004  # per image: cheaper than this (64 px JPEGs: 0.13 ms), threads cost more than they share

Item = tuple[Path, int]  # an image file and its class index
CROP_MARGIN = 0.875  # timm's default crop_pct: images are resized to size / 0.875 before a crop
Warn = Callable[..., None]  # reporter.warning(message, path=...)


def _torch() -> Any:
    import torch

    return torch


# -- one definition each: decoding, sizes, the order of an epoch ------------------------------------
def decode_resized(path: Path, size: int) -> Any:
    """Decode one image to a (3, size, size) uint8 array; raises on a corrupt file or one over the
    size limits (``core.datasets.images``: checked on the header, before anything is decoded). The
    file is opened once: a loader process shares the CPU with training, so each cycle per image counts."""
    import numpy as np
    from PIL import Image

    with open(path, "rb") as file:
        size_bytes = os.fstat(file.fileno()).st_size
        _check_limits(path, size_bytes, None)
        try:
            image = Image.open(file)
        except Exception as exc:  # e.g. PIL's decompression-bomb guard: say which limit, as the indexer does
            from core.datasets.images import check_image_limits

            check_image_limits(path)
            raise _image_error(path, f"unreadable image header ({exc})") from exc
        with image:
            _check_limits(path, size_bytes, image.size)
            image.draft("RGB", (size, size))  # JPEG: decode at a reduced scale when possible (much faster)
            rgb = image.convert("RGB")
            if rgb.size != (size, size):  # PIL's resize to the same size is a copy
                rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
            array = np.asarray(rgb, dtype=np.uint8)
    return array.transpose(2, 0, 1).copy()


def _check_limits(path: Path, size_bytes: int, dimensions: tuple[int, int] | None) -> None:
    """``check_image_limits`` on what the open file already says (its size, its header's dimensions)."""
    from core.datasets.images import limit_problem

    problem = limit_problem(size_bytes, *(dimensions or (None, None)))
    if problem is not None:
        raise _image_error(path, problem)


def _image_error(path: Path, problem: str) -> Exception:
    from core.datasets.errors import DatasetError

    return DatasetError(f"{path}: {problem}")


def cache_side_for(options: dict[str, Any], image_size: int) -> int:
    """The side to decode images at: with a random-resized crop, timm's 224 -> 256 margin (size / 0.875)
    so a crop of the whole image still has pixels to spare; else the training size itself."""
    return round(image_size / CROP_MARGIN) if options["scale"] is not None else image_size


def cache_bytes(count: int, side: int) -> int:
    """Bytes of ``count`` images decoded at ``side`` px (uint8 RGB)."""
    return count * 3 * side * side


def epoch_order(seed: int, epoch: int, count: int) -> Any:
    """The training order of an epoch: the same on every machine for a seed (resume reproduces it)."""
    torch = _torch()
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(count, generator=generator)


def steps_per_epoch(count: int, batch_size: int) -> int:
    steps = -(-count // batch_size)
    if steps > 1 and count % batch_size == 1:
        steps -= 1  # a last batch of one image breaks BatchNorm in train mode: drop it
    return steps


def epoch_batches(order: Any, batch_size: int) -> list[Any]:
    """``order`` cut into the epoch's batches of indices (see :func:`steps_per_epoch`)."""
    steps = steps_per_epoch(len(order), batch_size)
    return [order[step * batch_size : (step + 1) * batch_size] for step in range(steps)]


@dataclass(frozen=True)
class Plan:
    """Which source a job uses, and why (the log line says it)."""

    mode: str  # "cache" | "stream"
    side: int
    needed_bytes: int
    budget_bytes: int

    def describe(self, workers: int) -> str:
        need, budget = _megabytes(self.needed_bytes), _megabytes(self.budget_bytes)
        if self.mode == "cache":
            return f"decoded cache: {need} at {self.side} px, within the memory budget of {budget}"
        loaders = f"{workers} loader processes" if workers else "decoding threads in this process (workers: 0)"
        return (f"streaming from disk with {loaders}: decoded images would need {need} at {self.side} px, "
                f"more than the memory budget of {budget}")


def _megabytes(count: int) -> str:
    megabytes = count / MB
    return f"{megabytes:,.0f} MB" if megabytes >= 10 else f"{megabytes:.1f} MB".replace(".0 MB", " MB")


def choose_plan(count: int, side: int, budget_bytes: int) -> Plan:
    needed = cache_bytes(count, side)
    return Plan("cache" if needed <= budget_bytes else "stream", side, needed, budget_bytes)


# -- the decoded cache -------------------------------------------------------------------------------
@dataclass
class Decoded:
    images: Any  # (N, 3, S, S) uint8, on the CPU or the GPU
    labels: Any  # (N,) long, same device
    paths: list[Path]


def decode_all(items: list[Item], side: int, warn: Warn) -> Decoded:
    """Decode + resize every image once; corrupt files are skipped and reported in item order.

    The first :data:`DECODE_PROBE` images are decoded in this thread and timed. When an image costs
    more than :data:`THREADS_PAY_OFF_S`, the rest goes to one thread per core, each decoding an
    interleaved share into one uint8 array (PIL decodes without the GIL); small images stay in this
    thread, where the GIL hand-offs between threads cost more than the decoding they share. On 2 cores
    800 images took 0.10 s in one thread and 0.15 s in two at 64 px, but 0.90 s and 0.49 s at 224 px.
    The result is the same either way: only the speed depends on the choice."""
    import numpy as np

    torch = _torch()
    images = np.empty((len(items), 3, side, side), dtype=np.uint8)
    keep = np.zeros((len(items),), dtype=bool)

    def work(positions: range) -> list[tuple[int, str]]:
        problems = []
        for position in positions:
            try:
                images[position] = decode_resized(items[position][0], side)
            except Exception as exc:  # corrupt/truncated/too large: skip and report, never crash
                problems.append((position, f"unreadable image skipped: {exc}"))
                continue
            keep[position] = True
        return problems

    probe = range(min(DECODE_PROBE, len(items)))
    started = time.perf_counter()
    problems = work(probe)
    per_image = (time.perf_counter() - started) / max(len(probe), 1)
    threads = max(1, min(os.cpu_count() or 1, len(items) - len(probe))) if per_image > THREADS_PAY_OFF_S else 1
    rest = [range(len(probe) + first, len(items), threads) for first in range(threads)]
    if threads == 1:
        shares = [work(rest[0])]
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            shares = list(pool.map(work, rest))
    for position, problem in sorted(problems + [p for share in shares for p in share]):
        warn(problem, path=str(items[position][0]))
    if items and not keep.any():
        raise AdapterError("none of the images could be decoded")
    labels = torch.tensor([label for _path, label in items], dtype=torch.long)
    if keep.all():  # the usual case: no copy of the whole decoded set (twice its memory, for a moment)
        return Decoded(torch.from_numpy(images), labels, [path for path, _label in items])
    kept_paths = [path for (path, _label), ok in zip(items, keep.tolist(), strict=True) if ok]
    return Decoded(torch.from_numpy(images[keep]), labels[torch.from_numpy(keep)], kept_paths)


# -- streaming: a Dataset the loader processes decode from ---------------------------------------------
class Loaded(NamedTuple):
    """One collated batch: decoded images (raw JPEGs left as zeros until the GPU decodes them), their
    labels and item indices, the raw JPEG bytes by position, and the items that failed."""

    images: Any
    labels: Any
    indices: Any
    raw: list[tuple[int, Any]]
    failures: list[tuple[int, str]]


class ImageFiles:
    """A map-style torch Dataset over (path, label) items: a sample is (index, label, image, raw,
    error) with ``image`` a (3, S, S) uint8 tensor, or — with ``raw_jpeg`` — a JPEG's bytes left for
    the GPU. Picklable (spawned loader processes get a copy)."""

    def __init__(self, items: list[Item], side: int, *, raw_jpeg: bool = False, threads: int = 1) -> None:
        self.items = [(str(path), label) for path, label in items]
        self.side = side
        self.raw_jpeg = raw_jpeg
        self.threads = threads

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[int, int, Any, Any, str | None]:
        torch = _torch()
        path, label = self.items[index]
        try:
            if self.raw_jpeg:
                raw = _jpeg_bytes(Path(path))
                if raw is not None:
                    return index, label, None, torch.frombuffer(bytearray(raw), dtype=torch.uint8), None
            return index, label, torch.from_numpy(decode_resized(Path(path), self.side)), None, None
        except Exception as exc:
            return index, label, None, None, f"unreadable image skipped: {exc}"

    def __getitems__(self, indices: list[int]) -> list[tuple[int, int, Any, Any, str | None]]:
        """A batch's samples at once (the DataLoader calls this): in threads in the training process."""
        if self.threads <= 1 or len(indices) < 2:
            return [self[i] for i in indices]
        with ThreadPoolExecutor(max_workers=self.threads) as pool:
            return list(pool.map(self.__getitem__, indices))


def _jpeg_bytes(path: Path) -> bytes | None:
    """A JPEG's bytes (checked against the size limits); None for other formats."""
    from core.datasets.images import check_image_limits

    check_image_limits(path)
    data = path.read_bytes()
    return data if data[:2] == JPEG_MAGIC else None


def collate(samples: list[tuple[int, int, Any, Any, str | None]], side: int) -> Loaded:
    torch = _torch()
    good = [s for s in samples if s[4] is None]
    images = torch.zeros((len(good), 3, side, side), dtype=torch.uint8)
    raw = []
    for position, (_index, _label, image, jpeg, _error) in enumerate(good):
        if image is not None:
            images[position] = image
        else:
            raw.append((position, jpeg))
    labels = torch.tensor([s[1] for s in good], dtype=torch.long)
    indices = torch.tensor([s[0] for s in good], dtype=torch.long)
    return Loaded(images, labels, indices, raw, [(s[0], str(s[4])) for s in samples if s[4] is not None])


class _Collate:
    """A picklable collate function for a side (a lambda is not, under spawn)."""

    def __init__(self, side: int) -> None:
        self.side = side

    def __call__(self, samples: list[tuple[int, int, Any, Any, str | None]]) -> Loaded:
        return collate(samples, self.side)


class _Batches:
    """The loader's batch sampler: whatever list of index batches it is given next (runs in this process)."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


# -- the source the train loop uses ------------------------------------------------------------------
class BatchSource(ABC):
    """A job's training and validation batches: uint8 ``(B, 3, S, S)`` images and labels, on the device."""

    plan: Plan
    train_count: int

    def steps_per_epoch(self, batch_size: int) -> int:
        return steps_per_epoch(self.train_count, batch_size)

    @abstractmethod
    def where(self) -> str:
        """Where the images are held or decoded, in words (for the log line)."""

    @abstractmethod
    def train_batches(self, seed: int, epoch: int, batch_size: int) -> Iterator[tuple[Any, Any]]:
        """One epoch's batches in ``epoch_order(seed, epoch, …)``."""

    @abstractmethod
    def val_batches(self, batch_size: int) -> Iterator[tuple[Any, Any]]:
        """The validation batches, in :meth:`val_items` order."""

    @abstractmethod
    def val_items(self) -> list[Item]:
        """The validation images that decoded, in the order :meth:`val_batches` yields them."""

    def close(self) -> None:  # noqa: B027 - only the stream holds processes
        """End loader processes (the stream's); a no-op for a cache."""


class CachedSource(BatchSource):
    def __init__(self, plan: Plan, train: Decoded, val: Decoded, device: str) -> None:
        self.plan, self.device = plan, device
        self.on_gpu = device.startswith("cuda") and _fits_gpu(plan.needed_bytes, device)
        if self.on_gpu:  # the whole cache on the device: a step is an index there
            train = Decoded(train.images.to(device), train.labels.to(device), train.paths)
            val = Decoded(val.images.to(device), val.labels.to(device), val.paths)
        self.train, self.val = train, val
        self.train_count = len(train.paths)

    def where(self) -> str:
        return "GPU memory" if self.on_gpu else "host memory"

    def train_batches(self, seed: int, epoch: int, batch_size: int) -> Iterator[tuple[Any, Any]]:
        order = epoch_order(seed, epoch, self.train_count)
        if self.on_gpu:
            order = order.to(self.device)
        return self._batches(self.train, epoch_batches(order, batch_size))

    def val_batches(self, batch_size: int) -> Iterator[tuple[Any, Any]]:
        torch = _torch()
        everything = torch.arange(len(self.val.paths), device=self.val.images.device)
        return self._batches(self.val, list(everything.split(batch_size)))

    def _batches(self, data: Decoded, batches: list[Any]) -> Iterator[tuple[Any, Any]]:
        if self.on_gpu or not self.device.startswith("cuda"):
            return ((data.images[index], data.labels[index]) for index in batches)
        return prefetch_to_device((_gather_pinned(data, index) for index in batches), self.device)

    def val_items(self) -> list[Item]:
        return list(zip(self.val.paths, self.val.labels.tolist(), strict=True))


def _gather_pinned(data: Decoded, index: Any) -> tuple[Any, Any]:
    """A batch gathered from the host cache straight into pinned memory (copied to the GPU async)."""
    torch = _torch()
    images = torch.empty((len(index), *data.images.shape[1:]), dtype=torch.uint8, pin_memory=True)
    torch.index_select(data.images, 0, index, out=images)
    return images, data.labels[index].pin_memory()


class StreamSource(BatchSource):
    """Batches decoded from the files as they are needed, by ``workers`` loader processes (persistent
    for the job: train and validation share them)."""

    def __init__(self, plan: Plan, train: list[Item], val: list[Item], device: str, workers: int, warn: Warn) -> None:
        torch = _torch()
        self.plan, self.device, self.workers, self.warn = plan, device, workers, warn
        self.train_items, self.val_list = train, val
        self.train_count = len(train)
        self.failed: set[int] = set()  # indices into train + val
        self.gpu_decode = device.startswith("cuda") and gpu_jpeg_decode_works(device)
        dataset = ImageFiles(train + val, plan.side, raw_jpeg=self.gpu_decode,
                             threads=0 if workers else max(1, os.cpu_count() or 1))
        self.sampler = _Batches()
        self.loader = torch.utils.data.DataLoader(
            dataset, batch_sampler=self.sampler, num_workers=workers, collate_fn=_Collate(plan.side),
            pin_memory=device.startswith("cuda"), persistent_workers=workers > 0,
            prefetch_factor=LOADER_PREFETCH_BATCHES if workers else None,
        )

    def where(self) -> str:
        return "GPU JPEG decode" if self.gpu_decode else "CPU decode"

    def train_batches(self, seed: int, epoch: int, batch_size: int) -> Iterator[tuple[Any, Any]]:
        order = epoch_order(seed, epoch, self.train_count)
        return self._run([b.tolist() for b in epoch_batches(order, batch_size)])

    def val_batches(self, batch_size: int) -> Iterator[tuple[Any, Any]]:
        start = self.train_count
        indices = list(range(start, start + len(self.val_list)))
        return self._run([indices[i : i + batch_size] for i in range(0, len(indices), batch_size)])

    def val_items(self) -> list[Item]:
        start = self.train_count
        return [item for offset, item in enumerate(self.val_list) if start + offset not in self.failed]

    def _run(self, batches: list[list[int]]) -> Iterator[tuple[Any, Any]]:
        self.sampler.batches = batches
        reported = (self._report(batch) for batch in self.loader)
        if self.device.startswith("cuda"):
            return prefetch_to_device(reported, self.device, prepare=self._to_device)
        return ((batch.images, batch.labels) for batch in reported if len(batch.labels))

    def _report(self, batch: Loaded) -> Loaded:
        for index, message in batch.failures:
            self._fail(index, message)
        return batch

    def _to_device(self, batch: Loaded) -> tuple[Any, Any]:
        """On the side stream: the copy, and the GPU decode of the batch's raw JPEGs."""
        if batch.raw:
            return gpu_decode_into(batch, self.plan.side, self.device, self._fail)
        return batch.images.to(self.device, non_blocking=True), batch.labels.to(self.device, non_blocking=True)

    def _item(self, index: int) -> Item:
        return self.train_items[index] if index < self.train_count else self.val_list[index - self.train_count]

    def _fail(self, index: int, message: str) -> None:
        if index not in self.failed:
            self.failed.add(index)
            self.warn(message, path=str(self._item(index)[0]))

    def close(self) -> None:
        """Drop the loader's persistent iterator: its finaliser ends the loader processes (a later
        batch request would start new ones)."""
        self.loader._iterator = None


def open_source(train: list[Item], val: list[Item], *, side: int, budget_bytes: int, device: str, workers: int,
                warn: Warn) -> BatchSource:
    """The job's batch source: the decoded cache when train + val fit ``budget_bytes``, else a stream."""
    plan = choose_plan(len(train) + len(val), side, budget_bytes)
    if plan.mode == "cache":
        train_set, val_set = decode_all(train, side, warn), decode_all(val, side, warn)
        return CachedSource(plan, train_set, val_set, device)
    return StreamSource(plan, train, val, device, workers, warn)


# -- CUDA only ---------------------------------------------------------------------------------------
def _fits_gpu(needed: int, device: str) -> bool:
    torch = _torch()
    free, _total = torch.cuda.mem_get_info(torch.device(device))
    return needed <= GPU_CACHE_SHARE * free


def _copy_to(device: str, batch: Any) -> tuple[Any, Any]:
    images, labels = batch
    return images.to(device, non_blocking=True), labels.to(device, non_blocking=True)


def prefetch_to_device(batches: Iterator[Any], device: str,
                       prepare: Callable[[Any], tuple[Any, Any]] | None = None) -> Iterator[tuple[Any, Any]]:
    """Prepare batch n+1 on a side stream (its copy from pinned memory, ``prepare``: a GPU decode too)
    while the caller computes on batch n. Empty batches (every file failed) are left out."""
    torch = _torch()
    side = torch.cuda.Stream(device=torch.device(device))

    def start(batch: Any) -> tuple[Any, Any]:
        with torch.cuda.stream(side):
            return prepare(batch) if prepare is not None else _copy_to(device, batch)

    def ready(batch: tuple[Any, Any]) -> tuple[Any, Any]:
        current = torch.cuda.current_stream(torch.device(device))
        current.wait_stream(side)
        for tensor in batch:
            tensor.record_stream(current)  # the allocator must not reuse it while the compute stream reads it
        return batch

    pending = None
    for batch in batches:
        started = start(batch)
        if pending is not None and len(pending[1]):
            yield ready(pending)
        pending = started
    if pending is not None and len(pending[1]):
        yield ready(pending)


def gpu_jpeg_decode_works(device: str) -> bool:
    """Whether this torchvision decodes JPEGs on ``device`` (nvJPEG): tried once on a tiny image."""
    import io

    import numpy as np
    from PIL import Image

    torch = _torch()
    try:
        from torchvision.io import ImageReadMode, decode_jpeg

        buffer = io.BytesIO()
        Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(buffer, format="JPEG")
        data = torch.frombuffer(bytearray(buffer.getvalue()), dtype=torch.uint8)
        decode_jpeg([data], device=device, mode=ImageReadMode.RGB)
    except Exception:
        return False
    return True


def gpu_decode_into(batch: Loaded, side: int, device: str, fail: Callable[[int, str], None]) -> tuple[Any, Any]:
    """The batch on ``device`` with its raw JPEGs decoded there (one batched nvJPEG call) and resized
    to ``side`` (one call per source size); a JPEG that does not decode is dropped and reported."""
    torch = _torch()
    images = batch.images.to(device, non_blocking=True)
    positions = [position for position, _data in batch.raw]
    decoded = _decode_on_gpu([data for _position, data in batch.raw], device)
    keep = torch.ones(len(batch.labels), dtype=torch.bool)
    by_size: dict[tuple[int, ...], list[int]] = {}
    for position, image in zip(positions, decoded, strict=True):
        if image is None:
            keep[position] = False
            fail(int(batch.indices[position]), "unreadable image skipped: not a decodable JPEG")
        else:
            by_size.setdefault(tuple(image.shape), []).append(position)
    by_position = dict(zip(positions, decoded, strict=True))
    for group in by_size.values():
        stacked = torch.stack([by_position[position] for position in group])
        images[torch.tensor(group, device=device)] = _resize_on_gpu(stacked, side)
    labels = batch.labels.to(device, non_blocking=True)
    if bool(keep.all()):
        return images, labels
    keep_on_device = keep.to(device)
    return images[keep_on_device], labels[keep_on_device]


def _decode_on_gpu(datas: list[Any], device: str) -> list[Any]:
    """All at once; when one of them is corrupt, one by one (None for those that fail)."""
    from torchvision.io import ImageReadMode, decode_jpeg

    try:
        return list(decode_jpeg(datas, device=device, mode=ImageReadMode.RGB))
    except Exception:
        results = []
        for data in datas:
            try:
                results.append(decode_jpeg(data, device=device, mode=ImageReadMode.RGB))
            except Exception:
                results.append(None)
        return results


def _resize_on_gpu(images: Any, side: int) -> Any:
    """(B, 3, H, W) uint8 → (B, 3, side, side) uint8, antialiased like PIL's bilinear resize."""
    torch = _torch()
    if images.shape[-2:] == (side, side):
        return images
    resized = torch.nn.functional.interpolate(images.float(), size=(side, side), mode="bilinear",
                                              antialias=True, align_corners=False)
    return resized.round_().clamp_(0, 255).to(torch.uint8)
