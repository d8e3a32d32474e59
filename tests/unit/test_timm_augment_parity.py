"""The standard preset's colour jitter is torchvision's ColorJitter on PIL images (what timm's
create_transform(is_training=True) applies): each of its three operations, pixel for pixel. And the
augmentation, which works in place on its own float copy, never changes the caller's batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import functional as tvf

from adapters.timm_augment import TimmAugment, _enhance
from core.augmentation import augmentation_options

REFERENCE = {"Brightness": tvf.adjust_brightness, "Contrast": tvf.adjust_contrast, "Color": tvf.adjust_saturation}


@pytest.mark.parametrize("factor", [0.6, 0.85, 1.0, 1.3, 1.4])
@pytest.mark.parametrize("name", list(REFERENCE))
def test_colour_jitter_operations_equal_torchvisions_on_pil(name: str, factor: float) -> None:
    pixels = np.random.default_rng(7).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    batch = torch.from_numpy(pixels).permute(2, 0, 1)[None].float()
    ours = _enhance(batch, [(name, torch.tensor([True]))], torch.tensor([factor]))
    want = np.asarray(REFERENCE[name](Image.fromarray(pixels), factor))
    assert np.array_equal(ours[0].permute(1, 2, 0).numpy().astype(np.uint8), want)


@pytest.mark.parametrize("preset", ["light", "standard", "heavy"])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_augmenting_leaves_the_callers_batch_unchanged(preset: str, dtype: torch.dtype) -> None:
    augment = TimmAugment(augmentation_options("timm", preset), 16, "cpu", num_classes=3, seed=1)
    images = torch.randint(0, 256, (8, 3, augment.cache_side, augment.cache_side), dtype=torch.uint8).to(dtype)
    before = images.clone()
    batch, _targets = augment.train_batch(images, torch.arange(8) % 3)
    assert torch.equal(images, before)
    assert batch.shape == (8, 3, 16, 16) and not torch.equal(batch.flip(3), batch)
