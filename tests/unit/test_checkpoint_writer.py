"""The background checkpoint writer keeps the guarantees of a write on the training thread
(``adapters/checkpoint_writer.py``): order, atomic files, and a failure that still fails the job."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from adapters.base import atomic_write_bytes
from adapters.checkpoint_writer import CheckpointWriter


def test_tasks_run_in_submission_order_on_one_thread_and_close_waits_for_all(tmp_path: Path) -> None:
    release = threading.Event()
    done: list[tuple[str, str]] = []

    def write(name: str, data: bytes) -> None:
        release.wait(30)  # every task is queued behind this one before any runs
        atomic_write_bytes(tmp_path / name, data)
        done.append((name, threading.current_thread().name))

    writer = CheckpointWriter()
    for epoch in (1, 2, 3):
        writer.submit(write, "last.pt", f"epoch {epoch}".encode())
    writer.submit(write, "best.pt", b"epoch 3")
    assert done == []  # submit returned at once: training goes on
    release.set()
    writer.close()
    assert [name for name, _thread in done] == ["last.pt", "last.pt", "last.pt", "best.pt"]
    assert {thread for _name, thread in done} == {done[0][1]} and done[0][1].startswith("vp-checkpoints")
    assert (tmp_path / "last.pt").read_bytes() == b"epoch 3"
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_failed_write_is_raised_on_the_training_thread_and_later_tasks_still_run() -> None:
    ran: list[int] = []
    release = threading.Event()

    def fail() -> None:
        release.wait(30)  # both tasks are queued before it fails
        raise OSError(28, "No space left on device")

    writer = CheckpointWriter()
    writer.submit(fail)
    writer.submit(ran.append, 2)
    release.set()
    with pytest.raises(OSError, match="No space left"):
        writer.close()
    assert ran == [2]


def test_raise_if_failed_raises_a_finished_failure_on_the_training_thread() -> None:
    release = threading.Event()

    def fail() -> None:
        release.wait(30)  # the next task is queued before it fails
        raise RuntimeError("disk full")

    next_task_ran = threading.Event()
    writer = CheckpointWriter()
    writer.raise_if_failed()  # nothing submitted: nothing to raise
    writer.submit(fail)
    writer.submit(next_task_ran.set)  # runs only after the failed task's outcome is set
    release.set()
    assert next_task_ran.wait(30)
    with pytest.raises(RuntimeError, match="disk full"):
        writer.raise_if_failed()
    writer.close()  # the failure was handed over once


def test_with_block_raises_a_write_failure_but_never_masks_the_training_error() -> None:
    def fail() -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"), CheckpointWriter() as writer:
        writer.submit(fail)
    with pytest.raises(ValueError, match="training broke"), CheckpointWriter() as writer:
        writer.submit(fail)
        raise ValueError("training broke")
