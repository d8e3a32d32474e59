"""The timm batch sources: which one a job gets, and that a stream yields what the cache yields."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from adapters import timm_data
from adapters.base import AdapterError
from adapters.timm_data import (
    CachedSource,
    StreamSource,
    choose_plan,
    decode_resized,
    epoch_order,
    open_source,
    steps_per_epoch,
)
from core.files import MB
from core.services import ServiceError
from core.services import settings as settings_service
from core.settings import AUTO_MEMORY_SHARE, memory_budget_bytes
from tests.helpers.datasets_gen import make_imagefolder

SIDE = 24


class Warnings:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(self, message: str, path: str = "") -> None:
        self.seen.append((message, path))


@pytest.fixture(scope="module")
def items(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, int]]:
    """JPEGs and PNGs of three classes, larger than SIDE (so decoding resizes)."""
    root = tmp_path_factory.mktemp("timm-data")
    make_imagefolder(root / "jpg", per_class=6, size=40, ext=".jpg")
    make_imagefolder(root / "png", per_class=3, size=40, ext=".png", seed=1)
    names = ("red", "green", "blue")
    files = sorted((root / "jpg").rglob("*.jpg")) + sorted((root / "png").rglob("*.png"))
    return [(path, names.index(path.parent.name)) for path in files]


def split(items: list[tuple[Path, int]]) -> tuple[list[tuple[Path, int]], list[tuple[Path, int]]]:
    return items[::3] + items[1::3], items[2::3]


def collect(batches: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(images.clone(), labels.clone()) for images, labels in batches]


# -- the choice -----------------------------------------------------------------------------------
def test_the_cache_is_chosen_up_to_the_budget_and_the_stream_above_it() -> None:
    per_image = 3 * SIDE * SIDE
    assert choose_plan(10, SIDE, 10 * per_image).mode == "cache"
    stream = choose_plan(10, SIDE, 10 * per_image - 1)
    assert stream.mode == "stream" and stream.needed_bytes == 10 * per_image
    assert "streaming from disk with 2 loader processes" in stream.describe(workers=2)
    assert "decoding threads in this process" in stream.describe(workers=0)


def test_the_memory_budget_is_the_setting_or_a_share_of_free_memory() -> None:
    assert memory_budget_bytes(512) == 512 * MB
    assert memory_budget_bytes(0, available_bytes=8000 * MB) == int(8000 * MB * AUTO_MEMORY_SHARE)
    assert 0 < memory_budget_bytes(0)


def test_open_source_takes_the_path_the_budget_allows(items: list[tuple[Path, int]]) -> None:
    train, val = split(items)
    needed = 3 * SIDE * SIDE * len(items)
    cached = open_source(train, val, side=SIDE, budget_bytes=needed, device="cpu", workers=0, warn=Warnings())
    streamed = open_source(train, val, side=SIDE, budget_bytes=needed - 1, device="cpu", workers=0, warn=Warnings())
    assert isinstance(cached, CachedSource) and cached.plan.mode == "cache"
    assert isinstance(streamed, StreamSource) and streamed.plan.mode == "stream"


# -- the same batches ---------------------------------------------------------------------------------
@pytest.mark.parametrize("workers", [0, 2])
def test_streamed_batches_equal_the_cached_batches(items: list[tuple[Path, int]], workers: int) -> None:
    train, val = split(items)
    cached = open_source(train, val, side=SIDE, budget_bytes=1 << 40, device="cpu", workers=0, warn=Warnings())
    streamed = open_source(train, val, side=SIDE, budget_bytes=0, device="cpu", workers=workers, warn=Warnings())
    try:
        assert streamed.steps_per_epoch(5) == cached.steps_per_epoch(5) == steps_per_epoch(len(train), 5)
        for epoch in (1, 2):
            expected = collect(cached.train_batches(7, epoch, 5))
            got = collect(streamed.train_batches(7, epoch, 5))
            assert len(got) == len(expected) == cached.steps_per_epoch(5)
            for (images, labels), (want_images, want_labels) in zip(got, expected, strict=True):
                assert images.dtype == torch.uint8 and images.shape[1:] == (3, SIDE, SIDE)
                assert torch.equal(labels, want_labels) and torch.equal(images, want_images)
        got_val, expected_val = collect(streamed.val_batches(4)), collect(cached.val_batches(4))
        assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(got_val, expected_val, strict=True))
        assert streamed.val_items() == cached.val_items() == val
    finally:
        streamed.close()


def test_an_epoch_walks_the_seeded_order_in_batches(items: list[tuple[Path, int]]) -> None:
    """The order is the one earlier versions used (seed × 100003 + epoch), so a resume reproduces it."""
    train, val = split(items)
    cached = open_source(train, val, side=SIDE, budget_bytes=1 << 40, device="cpu", workers=0, warn=Warnings())
    generator = torch.Generator().manual_seed(7 * 100_003 + 3)
    order = torch.randperm(len(train), generator=generator)
    assert torch.equal(epoch_order(7, 3, len(train)), order)
    first_images, first_labels = next(iter(cached.train_batches(7, 3, 4)))
    want = torch.stack([torch.from_numpy(decode_resized(train[i][0], SIDE)) for i in order[:4].tolist()])
    assert torch.equal(first_images, want)
    assert first_labels.tolist() == [train[i][1] for i in order[:4].tolist()]


def test_a_last_batch_of_one_image_is_dropped() -> None:
    assert steps_per_epoch(9, 4) == 2 and steps_per_epoch(10, 4) == 3 and steps_per_epoch(1, 4) == 1


# -- unreadable files ---------------------------------------------------------------------------------
@pytest.mark.parametrize("budget", [0, 1 << 40], ids=["stream", "cache"])
def test_an_unreadable_image_is_skipped_and_named_once(items: list[tuple[Path, int]], tmp_path: Path, budget: int) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    train, val = split(items)
    warnings = Warnings()
    source = open_source(train, [*val, (broken, 0)], side=SIDE, budget_bytes=budget, device="cpu", workers=0,
                         warn=warnings)
    for _epoch in range(2):
        seen = sum(len(labels) for _images, labels in source.val_batches(4))
        assert seen == len(val)
    assert [path for _message, path in warnings.seen] == [str(broken)]
    assert "unreadable image skipped" in warnings.seen[0][0]
    assert source.val_items() == val


def test_nothing_decodable_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    with pytest.raises(AdapterError, match="none of the images could be decoded"):
        open_source([(broken, 0)], [(broken, 0)], side=SIDE, budget_bytes=1 << 40, device="cpu", workers=0,
                    warn=Warnings())


# -- the setting --------------------------------------------------------------------------------------
def test_the_memory_budget_is_a_setting(store: Any) -> None:
    assert settings_service.load_settings(store).memory_budget_mb == 0
    saved = settings_service.update_settings(store, {"memory_budget_mb": "2048"})
    assert saved.memory_budget_mb == 2048 and settings_service.load_settings(store).memory_budget_mb == 2048
    with pytest.raises(ServiceError, match="memory_budget_mb"):
        settings_service.update_settings(store, {"memory_budget_mb": "-1"})


@pytest.mark.parametrize("pay_off_s", [float("inf"), 0.0], ids=["one-thread", "threads"])
def test_the_cache_is_the_same_decoded_in_one_thread_or_shared_out(
        items: list[tuple[Path, int]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pay_off_s: float) -> None:
    """decode_all times its first images, then decodes the rest in this thread or in one thread per core:
    the same pixels, labels and warnings (in item order) either way; unreadable files on both sides of
    the probe are skipped."""
    monkeypatch.setattr(timm_data, "DECODE_PROBE", 3)
    monkeypatch.setattr(timm_data, "THREADS_PAY_OFF_S", pay_off_s)
    broken = [tmp_path / "broken_in_probe.jpg", tmp_path / "broken_after.jpg"]
    for path in broken:
        path.write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    mixed = [items[0], (broken[0], 1), *items[1:5], (broken[1], 0), *items[5:9]]
    warnings = Warnings()
    decoded = timm_data.decode_all(mixed, SIDE, warnings)
    good = [item for item in mixed if item[0] not in broken]
    assert torch.equal(decoded.images, torch.stack([torch.from_numpy(decode_resized(path, SIDE)) for path, _ in good]))
    assert decoded.labels.tolist() == [label for _path, label in good]
    assert decoded.paths == [path for path, _label in good]
    assert [path for _message, path in warnings.seen] == [str(path) for path in broken]
