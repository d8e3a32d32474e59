"""A standby worker's prefetch (adapters.prefetch): what it decodes is what the job would decode, a
changed file or another side is decoded again, and the job's cache takes the prefetched images."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from adapters import prefetch
from adapters.timm_adapter import TimmAdapter
from adapters.timm_data import decode_all, decode_resized, open_source
from core.config import config_from_dict
from tests.helpers.datasets_gen import make_imagefolder

SIDE = 24


@pytest.fixture()
def images(tmp_path: Path) -> list[Path]:
    make_imagefolder(tmp_path / "data", per_class=4, size=40, ext=".jpg")
    return sorted((tmp_path / "data").rglob("*.jpg"))


def _no_warning(message: str, path: str = "") -> None:
    raise AssertionError(f"unexpected warning: {message} ({path})")


def test_prefetched_images_equal_the_jobs_own_decode(images: list[Path]) -> None:
    prefetch.start(lambda: (images, SIDE))
    prefetch.wait()
    ready = prefetch.take(SIDE)
    assert set(ready) == set(images)
    for path in images:
        assert np.array_equal(ready[path], decode_resized(path, SIDE))
    assert prefetch.take(SIDE) == {}, "handed over once"


def test_a_changed_file_or_another_side_is_decoded_again(images: list[Path]) -> None:
    prefetch.start(lambda: (images, SIDE))
    prefetch.wait()  # all decoded before the change
    stat = images[0].stat()
    os.utime(images[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert set(prefetch.take(SIDE)) == set(images[1:])
    prefetch.start(lambda: (images, SIDE))
    prefetch.wait()
    assert prefetch.take(SIDE + 8) == {}


def test_the_decoded_cache_takes_prefetched_images(images: list[Path]) -> None:
    marker = np.full((3, SIDE, SIDE), 7, dtype=np.uint8)  # no real decode gives a flat 7
    items = [(path, 0) for path in images]
    decoded = decode_all(items, SIDE, _no_warning, ready={images[1]: marker})
    assert bool((decoded.images[1] == 7).all())
    assert torch.equal(decoded.images[0], torch.from_numpy(decode_resized(images[0], SIDE)))


def test_a_failing_plan_prefetches_nothing_and_the_job_decodes_everything(images: list[Path]) -> None:
    def broken() -> tuple[list[Path], int]:
        raise FileNotFoundError("dataset moved")

    prefetch.start(broken)
    assert prefetch.take(SIDE) == {}
    source = open_source([(p, 0) for p in images], [(images[0], 0)], side=SIDE, budget_bytes=10**9, device="cpu",
                         workers=0, warn=_no_warning)
    assert source.where() and len(source.val_items()) == 1


def test_timm_warm_up_prefetches_the_configs_split(tmp_path: Path) -> None:
    make_imagefolder(tmp_path / "data", per_class=5, size=40, ext=".jpg")
    config = config_from_dict({"dataset": str(tmp_path / "data"), "model": "test_resnet", "image_size": 32,
                               "augmentation": {"preset": "none"}})
    TimmAdapter.warm_up(config)
    prefetch.wait()
    ready = prefetch.take(32)
    assert len(ready) == 15  # train + val of the split (no test split here)
    assert all(array.shape == (3, 32, 32) for array in ready.values())


def test_a_job_handed_over_while_the_dataset_is_still_read_does_not_wait_for_it(images: list[Path]) -> None:
    import threading

    reading = threading.Event()
    release = threading.Event()

    def slow_plan() -> tuple[list[Path], int]:
        reading.set()
        release.wait(timeout=60)  # the dataset read goes on until the test has taken its answer
        return images, SIDE

    prefetch.start(slow_plan)
    assert reading.wait(timeout=60)
    assert prefetch.take(SIDE) == {}  # at once: the job reads and decodes its images itself
    release.set()
