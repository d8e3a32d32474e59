"""timm augmentation on the device (adapters.timm_augment): shapes, ranges, per-sample randomness,
seeded determinism, mixup targets, and the RandAugment operations against timm's own PIL ones."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from PIL import Image
from timm.data import auto_augment as timm_aa
from timm.data.constants import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.loss import SoftTargetCrossEntropy

from adapters.timm_augment import RAND_OPS, TimmAugment, parse_auto_augment
from core.augmentation import AUGMENTATION_PRESETS, augmentation_options

SIZE = 32
CLASSES = 4


def augmenter(preset: str, seed: int = 0, **overrides: object) -> TimmAugment:
    return TimmAugment(augmentation_options("timm", preset, overrides), SIZE, "cpu", num_classes=CLASSES, seed=seed)


def picture(side: int, seed: int = 0) -> np.ndarray:
    """A (side, side, 3) uint8 image with gradients, edges and noise (every op visibly changes it)."""
    ys, xs = np.mgrid[0:side, 0:side]
    image = np.stack([(xs * 7) % 256, (ys * 5 + 30) % 256, ((xs + ys) * 3) % 200 + 20], -1).astype(np.float32)
    noise = np.random.RandomState(seed).randn(side, side, 3) * 12
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def batch_of(count: int, side: int) -> torch.Tensor:
    return torch.stack([torch.from_numpy(picture(side, seed=i)).permute(2, 0, 1) for i in range(count)])


def reference_normalise(images: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_DEFAULT_MEAN).view(1, 3, 1, 1) * 255
    std = torch.tensor(IMAGENET_DEFAULT_STD).view(1, 3, 1, 1) * 255
    return (images.float() - mean) / std


@pytest.mark.parametrize("preset", AUGMENTATION_PRESETS)
def test_shapes_dtypes_and_ranges(preset: str) -> None:
    augment = augmenter(preset)
    images = batch_of(6, augment.cache_side)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    batch, targets = augment.train_batch(images, labels)
    assert batch.shape == (6, 3, SIZE, SIZE) and batch.dtype == torch.float32
    low, high = reference_normalise(torch.tensor([0.0, 255.0]).view(2, 1, 1, 1).expand(2, 3, 1, 1))
    if preset != "heavy":  # random erasing fills with unbounded normal noise
        assert bool((batch >= low.view(1, 3, 1, 1) - 1e-4).all()) and bool((batch <= high.view(1, 3, 1, 1) + 1e-4).all())
    if preset == "heavy":
        assert targets.shape == (6, CLASSES) and targets.dtype == torch.float32
    else:
        assert torch.equal(targets, labels)
    evaluated = augment.eval_batch(images)
    assert evaluated.shape == (6, 3, SIZE, SIZE) and evaluated.dtype == torch.float32
    shown = augment.preview(images)
    assert shown.shape == (6, 3, SIZE, SIZE) and shown.dtype == torch.uint8


def test_cache_side_leaves_room_for_the_crop() -> None:
    assert augmenter("light").cache_side == SIZE and augmenter("none").cache_side == SIZE
    assert augmenter("standard").cache_side == round(SIZE / 0.875)
    assert augmenter("light", scale=[0.5, 1.0]).cache_side == round(SIZE / 0.875)


def test_none_is_resize_and_normalise_only() -> None:
    augment = augmenter("none")
    images = batch_of(4, SIZE)
    batch, _targets = augment.train_batch(images, torch.zeros(4, dtype=torch.long))
    assert torch.allclose(batch, reference_normalise(images), atol=1e-5)
    assert torch.allclose(augment.eval_batch(images), reference_normalise(images), atol=1e-5)
    larger = batch_of(4, 48)  # any other side is resized like PIL does it (bilinear, antialiased)
    expected = F.interpolate(larger.float(), size=(SIZE, SIZE), mode="bilinear", antialias=True).round()
    batch, _targets = augment.train_batch(larger, torch.zeros(4, dtype=torch.long))
    assert torch.allclose(batch, reference_normalise(expected), atol=1e-5)


def test_light_flips_some_images_and_leaves_the_others() -> None:
    augment = augmenter("light", seed=3)
    images = batch_of(1, SIZE).expand(32, -1, -1, -1)
    batch, _targets = augment.train_batch(images, torch.zeros(32, dtype=torch.long))
    plain = reference_normalise(images[:1])
    flipped = [bool(torch.allclose(row, plain[0].flip(2), atol=1e-5)) for row in batch]
    unflipped = [bool(torch.allclose(row, plain[0], atol=1e-5)) for row in batch]
    assert all(a != b for a, b in zip(flipped, unflipped, strict=True))
    assert 4 <= sum(flipped) <= 28


def test_each_image_gets_its_own_random_parameters() -> None:
    augment = augmenter("standard", seed=1)
    images = batch_of(1, augment.cache_side).expand(8, -1, -1, -1)
    batch, _targets = augment.train_batch(images, torch.zeros(8, dtype=torch.long))
    distinct = {tuple(row.flatten()[:64].tolist()) for row in batch}
    assert len(distinct) == 8


def test_a_seed_gives_the_same_augmentation_again() -> None:
    images = batch_of(8, round(SIZE / 0.875))
    labels = torch.arange(8) % CLASSES
    first = augmenter("heavy", seed=7).train_batch(images, labels)
    again = augmenter("heavy", seed=7).train_batch(images, labels)
    other = augmenter("heavy", seed=8).train_batch(images, labels)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])
    reseeded = augmenter("heavy", seed=99)
    reseeded.reseed(7)
    assert torch.equal(reseeded.train_batch(images, labels)[0], first[0])


def test_the_augmentation_stream_is_not_the_shuffle_stream_of_the_same_seed() -> None:
    """The adapter seeds the epoch's shuffle (timm_data.epoch_order) and the augmentation with the
    same per-epoch number; the augmentation must draw other numbers, not replay the shuffle's."""
    from adapters.timm_data import epoch_order

    augment = augmenter("standard")
    for epoch_seed in (0, 7, 100_004):
        augment.reseed(epoch_seed)
        drawn = torch.rand(16, generator=augment.generator)
        replayed = torch.rand(16, generator=torch.Generator().manual_seed(epoch_seed))
        assert not torch.allclose(drawn, replayed)
        augment.reseed(epoch_seed)
        assert not torch.equal(torch.randperm(64, generator=augment.generator), epoch_order(0, epoch_seed, 64))


def test_mixup_and_cutmix_give_soft_targets_that_sum_to_one() -> None:
    for overrides in ({"mixup": 0.8, "cutmix": 0.0}, {"mixup": 0.0, "cutmix": 1.0}, {}):
        augment = augmenter("heavy", seed=2, **overrides)
        labels = torch.tensor([0, 1, 2, 3, 1])  # odd: timm's Mixup would refuse it
        for _ in range(4):
            batch, targets = augment.train_batch(batch_of(5, augment.cache_side), labels)
            assert targets.shape == (5, CLASSES)
            assert torch.allclose(targets.sum(1), torch.ones(5), atol=1e-6) and bool((targets >= 0).all())
            # each row mixes its own label with the mirrored image's label (and the smoothing floor)
            assert bool((targets.argmax(1) == labels).logical_or(targets.argmax(1) == labels.flip(0)).all())
    assert isinstance(augmenter("heavy").loss_fn(), SoftTargetCrossEntropy)
    plain = augmenter("standard").loss_fn()
    assert isinstance(plain, torch.nn.CrossEntropyLoss) and plain.label_smoothing == 0.1


def test_random_crop_of_the_whole_image_is_a_resize() -> None:
    augment = augmenter("none", scale=[1.0, 1.0], ratio=[1.0, 1.0])
    images = batch_of(3, augment.cache_side)
    batch, _targets = augment.train_batch(images, torch.zeros(3, dtype=torch.long))
    expected = F.interpolate(images.float(), size=(SIZE, SIZE), mode="bilinear", antialias=True)
    assert (batch - reference_normalise(expected)).abs().mean() < 0.02  # about 1 of 255 grey levels


def test_random_crop_zooms_in() -> None:
    augment = augmenter("none", scale=[0.1, 0.1], ratio=[1.0, 1.0])
    ramp = torch.arange(augment.cache_side, dtype=torch.float32).view(1, 1, 1, -1).expand(4, 3, augment.cache_side, -1)
    shown = augment.preview(ramp.to(torch.uint8))
    spans = shown[:, 0, 0, -1].float() - shown[:, 0, 0, 0].float()
    expected = (0.1 ** 0.5) * augment.cache_side  # a crop of 10 % of the area is ~32 % of the width
    assert bool((spans - expected).abs().le(2.5).all()), spans


def test_colour_jitter_changes_colours_not_geometry() -> None:
    augment = augmenter("none", color_jitter=0.4)
    images = batch_of(1, SIZE).expand(6, -1, -1, -1)
    shown = augment.preview(images).float()
    assert len({round(float(row.mean()), 3) for row in shown}) == 6
    original = images.float()
    for row in shown:  # brightness/contrast/saturation keep edges where they were
        correlation = torch.corrcoef(torch.stack([row.mean(0).flatten(), original[0].mean(0).flatten()]))[0, 1]
        assert correlation > 0.8


@pytest.mark.parametrize("increasing", [False, True])
@pytest.mark.parametrize("name", RAND_OPS)
def test_rand_augment_operations_match_timms(name: str, increasing: bool) -> None:
    """Each operation against timm's PIL implementation at the same magnitude and sign."""
    side = 40
    image = picture(side)
    augment = augmenter("heavy")
    fill = tuple(int(v) for v in augment.fill.tolist())
    suffix = "Increasing" if increasing and name in ("Posterize", "Solarize", "Color", "Contrast", "Brightness", "Sharpness") else ""
    for level in (0.35, 0.9):
        op = timm_aa.AugmentOp(name + suffix, prob=1.0, magnitude=level * 10,
                               hparams={"img_mean": fill, "interpolation": Image.Resampling.BILINEAR})
        random.seed(5)
        sign = -1.0 if random.random() > 0.5 else 1.0  # timm's _randomly_negate draws this first
        random.seed(5)
        expected = np.asarray(op(Image.fromarray(image))).astype(np.float32)
        ours = augment.apply_ops(torch.from_numpy(image).permute(2, 0, 1)[None].float(),
                                 torch.tensor([RAND_OPS.index(name)]), torch.tensor([level]), torch.tensor([sign]),
                                 increasing=increasing)[0].permute(1, 2, 0).numpy()
        difference = np.abs(ours - expected)
        if name in ("Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel"):
            assert difference.mean() < 1.5 and (difference > 2).mean() < 0.05  # edge pixels differ (fill blending)
        else:
            assert difference.max() <= 1, f"{name}{suffix} at {level}: up to {difference.max()} grey levels off"


def test_auto_augment_strings() -> None:
    spec = parse_auto_augment("rand-m9-mstd0.5-inc1")
    assert (spec.magnitude, spec.magnitude_std, spec.increasing, spec.num_layers, spec.prob) == (9, 0.5, True, 2, 0.5)
    assert parse_auto_augment("rand-n3-m5-p1.0").num_layers == 3
    trivial = parse_auto_augment("trivialaugment")
    assert trivial.num_layers == 1 and trivial.prob == 1.0
    with pytest.raises(ValueError, match="'original'"):
        parse_auto_augment("original")
    with pytest.raises(ValueError, match="unknown section 'x3'"):
        parse_auto_augment("rand-m9-x3")


def test_bad_option_values_are_named() -> None:
    with pytest.raises(ValueError, match="hflip must be between 0 and 1"):
        augmenter("light", hflip=1.5)
    with pytest.raises(ValueError, match="scale must be two increasing"):
        augmenter("standard", scale=[0.9, 0.1])
    with pytest.raises(ValueError, match="auto_augment 'augmix-m5'"):
        augmenter("standard", auto_augment="augmix-m5")


def test_preview_needs_no_classes_and_shows_what_training_sees() -> None:
    options = augmentation_options("timm", "heavy", {})
    preview_only = TimmAugment(options, SIZE, "cpu", seed=4)  # the preview helper knows no class count
    trainer = TimmAugment(options, SIZE, "cpu", num_classes=CLASSES, seed=4)
    images = batch_of(6, preview_only.cache_side)
    shown = preview_only.preview(images)
    trained, _targets = trainer.train_batch(images, torch.zeros(6, dtype=torch.long))
    as_pixels = (trained * trainer.std255 + trainer.mean255).clamp(0, 255).round().to(torch.uint8)
    assert torch.equal(shown, as_pixels)
    with pytest.raises(ValueError, match="num_classes"):
        preview_only.train_batch(images, torch.zeros(6, dtype=torch.long))
