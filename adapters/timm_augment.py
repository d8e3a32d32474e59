"""timm's training augmentation, computed on the device for a whole batch at once.

timm applies its transforms (``create_transform``: random-resized crop, flips, colour jitter or
RandAugment, random erasing; then ``Mixup`` and label smoothing from ``train.py``) to one PIL image
at a time in DataLoader workers. Here every image is decoded once into a uint8 cache at
``cache_side`` (a little larger than ``image_size`` when cropping, like timm's eval resize) and each
batch is augmented on the device with per-sample random parameters: the same operations, ranges and
order as timm, but no per-image host work — the fast path of decode once, augment on the device.

Pixel values stay whole numbers in 0..255 (as PIL's uint8 images do) until normalisation, so the
lookup-table operations (equalize, posterize, solarize …) see what PIL sees. Every random choice
comes from one seeded generator (per-sample parameters, on the device) and one seeded host
``random.Random`` (per-batch mixup/cutmix parameters): a seed gives the same augmentation again.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812  (the usual name)
from timm.data.constants import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.data.mixup import mixup_target
from timm.loss import SoftTargetCrossEntropy
from torchvision.ops import roi_align

from adapters.timm_data import cache_side_for

_LEVEL_DENOM = 10.0  # timm's magnitude scale: M10 is the strongest level
_GRAY = (0.299, 0.587, 0.114)  # PIL's "L" conversion weights
_ATTEMPTS = 10  # torchvision/timm try this many random boxes before falling back
_STREAM_SALT = 0x9E3779B97F4A7C15  # mixes a seed into a stream of its own (see stream_seed)


@dataclass(frozen=True)
class RandAugmentSpec:
    """A parsed timm RandAugment string (``rand-m9-n2-mstd0.5-inc1``; see timm's auto_augment.py)."""

    magnitude: float = _LEVEL_DENOM
    num_layers: int = 2
    prob: float = 0.5
    magnitude_std: float = 0.0
    magnitude_max: float = _LEVEL_DENOM
    increasing: bool = False


def parse_auto_augment(text: str) -> RandAugmentSpec:
    """timm's ``rand-…`` grammar (m, n, p, mstd, mmax, inc), and ``trivialaugment``: one op per image
    at a uniformly drawn magnitude (TrivialAugment over RandAugment's operations)."""
    if text == "trivialaugment":
        return RandAugmentSpec(num_layers=1, prob=1.0, magnitude_std=math.inf, increasing=True)
    sections = text.split("-")
    if sections[0] != "rand":
        raise ValueError(f"auto_augment {text!r}: only RandAugment ('rand-m9-mstd0.5-inc1' …) and 'trivialaugment' "
                         "are computed on the device")
    values: dict[str, float] = {}
    for section in sections[1:]:
        match = re.fullmatch(r"(mstd|mmax|inc|m|n|p)(\d+(?:\.\d+)?)", section)
        if not match:
            raise ValueError(f"auto_augment {text!r}: unknown section {section!r} (known: m, n, p, mstd, mmax, inc)")
        values[match.group(1)] = float(match.group(2))
    mstd = values.get("mstd", 0.0)
    return RandAugmentSpec(
        magnitude=values.get("m", _LEVEL_DENOM), num_layers=int(values.get("n", 2)), prob=values.get("p", 0.5),
        magnitude_std=math.inf if mstd > 100 else mstd, magnitude_max=values.get("mmax", _LEVEL_DENOM),
        increasing=bool(values.get("inc", 0)),
    )


# RandAugment's operations, grouped by how they are computed for a whole batch at once.
_LUT_OPS = ("AutoContrast", "Equalize", "Invert", "Posterize", "Solarize", "SolarizeAdd")
_ENHANCE_OPS = ("Color", "Contrast", "Brightness", "Sharpness")
_AFFINE_OPS = ("Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")
RAND_OPS = (*_LUT_OPS, *_ENHANCE_OPS, *_AFFINE_OPS)  # the 15 of timm's _RAND_TRANSFORMS (no Cutout)


def _check_options(options: dict[str, Any]) -> None:
    def fraction(key: str) -> None:
        if not 0.0 <= float(options[key]) <= 1.0:
            raise ValueError(f"augmentation option {key} must be between 0 and 1, got {options[key]!r}")

    for key in ("hflip", "vflip", "re_prob", "label_smoothing"):
        fraction(key)
    for key in ("color_jitter", "mixup", "cutmix"):
        if float(options[key]) < 0:
            raise ValueError(f"augmentation option {key} must be 0 or more, got {options[key]!r}")
    for key in ("scale", "ratio"):
        value = options[key]
        if value is None and key == "scale":
            continue
        if len(value) != 2 or not 0 < float(value[0]) <= float(value[1]):
            raise ValueError(f"augmentation option {key} must be two increasing positive numbers, got {value!r}")
    if options["scale"] is not None and float(options["scale"][1]) > 1:
        raise ValueError(f"augmentation option scale is a fraction of the image area (at most 1), got {options['scale']!r}")


class TimmAugment:
    """The augmentation of one timm job: ``train_batch`` / ``eval_batch`` / ``preview`` take uint8
    batches (N, 3, S, S) at ``cache_side`` and return images at ``image_size``."""

    def __init__(self, options: dict[str, Any], image_size: int, device: str | torch.device, *,
                 num_classes: int = 0, mean: tuple[float, ...] = IMAGENET_DEFAULT_MEAN,
                 std: tuple[float, ...] = IMAGENET_DEFAULT_STD, seed: int = 0) -> None:
        _check_options(options)
        self.options = dict(options)
        self.image_size = image_size
        self.device = torch.device(device)
        self.num_classes = num_classes
        self.cache_side = cache_side_for(options, image_size)
        self.rand_augment = parse_auto_augment(options["auto_augment"]) if options["auto_augment"] else None
        self.mixing = float(options["mixup"]) > 0 or float(options["cutmix"]) > 0
        self.mean255 = torch.tensor(mean, device=self.device).view(1, 3, 1, 1) * 255
        self.std255 = torch.tensor(std, device=self.device).view(1, 3, 1, 1) * 255
        self.fill = torch.tensor([min(255, round(255 * m)) for m in mean], device=self.device, dtype=torch.float32)
        self.generator = torch.Generator(device=self.device).manual_seed(stream_seed(seed))
        self.host_random = random.Random(stream_seed(seed))

    # ------------------------------------------------------------------ public
    def reseed(self, seed: int) -> None:
        """Restart the random streams (per epoch: a resumed job augments its epochs as a fresh one would)."""
        self.generator.manual_seed(stream_seed(seed))
        self.host_random.seed(stream_seed(seed))

    def train_batch(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Augmented, normalised float batch (N, 3, image_size, image_size) and its targets: class
        indices, or (N, num_classes) soft targets when mixup/cutmix is on."""
        batch = self._random_erase(self._normalise_own(self._augment_pixels(images)))
        labels = labels.to(self.device, non_blocking=True)
        if not self.mixing:
            return batch, labels
        if self.num_classes < 2:
            raise ValueError("mixup/cutmix need the number of classes (num_classes)")
        batch, lam = self._mix(batch)
        return batch, mixup_target(labels, self.num_classes, lam, float(self.options["label_smoothing"]))

    def eval_batch(self, images: torch.Tensor) -> torch.Tensor:
        """The whole image resized to ``image_size`` and normalised: what inference and exported
        models see (no centre crop)."""
        return self.normalise(_resized(images.to(self.device, non_blocking=True), self.image_size))

    def preview(self, images: torch.Tensor) -> torch.Tensor:
        """What training sees, as uint8 images (N, 3, image_size, image_size): the augmentation incl.
        random erasing and mixup/cutmix (mixed within the batch), un-normalised."""
        batch = self._random_erase(self._normalise_own(self._augment_pixels(images)))
        if self.mixing:
            batch, _lam = self._mix(batch)
        return (batch * self.std255 + self.mean255).clamp(0, 255).round().to(torch.uint8)

    def loss_fn(self) -> torch.nn.Module:
        """timm train.py's loss: soft-target cross-entropy under mixup/cutmix (the smoothing is in the
        targets), else cross-entropy with label smoothing."""
        if self.mixing:
            return SoftTargetCrossEntropy()
        return torch.nn.CrossEntropyLoss(label_smoothing=float(self.options["label_smoothing"]))

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        return (pixels.float() - self.mean255) / self.std255

    def _normalise_own(self, pixels: torch.Tensor) -> torch.Tensor:
        """:meth:`normalise` in place, for the float batch :meth:`_augment_pixels` made: on a CPU each
        new batch-sized tensor costs page faults, and the augmentation shares the cores with training."""
        return pixels.sub_(self.mean255).div_(self.std255)

    # ------------------------------------------------------------------ pipeline
    def _augment_pixels(self, images: torch.Tensor) -> torch.Tensor:
        """Crop, flips, then RandAugment or colour jitter (timm disables jitter when RandAugment is on);
        float pixels 0..255 holding whole numbers."""
        batch = self._at_cache_side(images).to(torch.float32, copy=True)  # ours: changed in place below
        batch = self._crop(batch)
        batch = self._flip(batch, float(self.options["hflip"]), dim=3)
        batch = self._flip(batch, float(self.options["vflip"]), dim=2)
        if self.rand_augment is not None:
            return self._rand_augment(batch, self.rand_augment)
        if float(self.options["color_jitter"]) > 0:
            return self._color_jitter(batch, float(self.options["color_jitter"]))
        return batch

    def _at_cache_side(self, images: torch.Tensor) -> torch.Tensor:
        return _resized(images.to(self.device, non_blocking=True), self.cache_side)

    def _uniform(self, low: float | torch.Tensor, high: float | torch.Tensor, *shape: int) -> torch.Tensor:
        return low + (high - low) * torch.rand(shape, generator=self.generator, device=self.device)

    def _chance(self, probability: float, count: int) -> torch.Tensor:
        return torch.rand(count, generator=self.generator, device=self.device) < probability

    def _crop(self, batch: torch.Tensor) -> torch.Tensor:
        """torchvision's RandomResizedCrop parameters (10 tries, then the whole image), all samples at
        once; the resize is a bilinear roi_align that averages when shrinking."""
        count, _channels, height, width = batch.shape
        size = self.image_size
        if self.options["scale"] is None:
            boxes = torch.tensor([0.0, 0.0, width, height], device=self.device).expand(count, 4)
        else:
            boxes = self._crop_boxes(count, height, width)
        if self.options["scale"] is None and (height, width) == (size, size):
            return batch
        rois = torch.cat([torch.arange(count, device=self.device, dtype=batch.dtype).view(-1, 1), boxes], dim=1)
        cropped = roi_align(batch, rois, output_size=(size, size), spatial_scale=1.0, sampling_ratio=-1, aligned=True)
        return cropped.clamp(0, 255).round()

    def _crop_boxes(self, count: int, height: int, width: int) -> torch.Tensor:
        low, high = (float(v) for v in self.options["scale"])
        ratio_low, ratio_high = (math.log(float(v)) for v in self.options["ratio"])
        area = self._uniform(low, high, count, _ATTEMPTS) * (height * width)
        aspect = torch.exp(self._uniform(ratio_low, ratio_high, count, _ATTEMPTS))
        crop_w = torch.round(torch.sqrt(area * aspect))
        crop_h = torch.round(torch.sqrt(area / aspect))
        fits = (crop_w > 0) & (crop_w <= width) & (crop_h > 0) & (crop_h <= height)
        first = fits.float().argmax(dim=1, keepdim=True)  # first try that fits (0 when none does)
        found = fits.any(dim=1)
        crop_w = torch.where(found, crop_w.gather(1, first).squeeze(1), torch.full_like(found, width, dtype=torch.float))
        crop_h = torch.where(found, crop_h.gather(1, first).squeeze(1), torch.full_like(found, height, dtype=torch.float))
        top = torch.floor(self._uniform(0.0, 1.0, count) * (height - crop_h + 1))
        left = torch.floor(self._uniform(0.0, 1.0, count) * (width - crop_w + 1))
        top = torch.where(found, top, torch.floor((height - crop_h) / 2))
        left = torch.where(found, left, torch.floor((width - crop_w) / 2))
        return torch.stack([left, top, left + crop_w, top + crop_h], dim=1)

    def _flip(self, batch: torch.Tensor, probability: float, *, dim: int) -> torch.Tensor:
        if probability <= 0:
            return batch
        chosen = self._chance(probability, batch.shape[0]).view(-1, 1, 1, 1)
        return torch.where(chosen, batch.flip(dim), batch, out=batch)  # elementwise: safe in place

    # ------------------------------------------------------------------ colour jitter
    def _color_jitter(self, batch: torch.Tensor, strength: float) -> torch.Tensor:
        """torchvision ColorJitter(b, c, s): factors in [1 - s, 1 + s], applied in a random order per image."""
        count = batch.shape[0]
        order = torch.argsort(torch.rand(count, 3, generator=self.generator, device=self.device), dim=1)
        factors = self._uniform(max(0.0, 1 - strength), 1 + strength, count, 3)
        ops = ("Brightness", "Contrast", "Color")
        for position in range(3):
            op_index = order[:, position]
            factor = factors.gather(1, op_index.view(-1, 1)).squeeze(1)
            batch = _enhance(batch, [(name, op_index == i) for i, name in enumerate(ops)], factor)
        return batch

    # ------------------------------------------------------------------ RandAugment
    def _rand_augment(self, batch: torch.Tensor, spec: RandAugmentSpec) -> torch.Tensor:
        count = batch.shape[0]
        for _layer in range(spec.num_layers):
            op = torch.randint(len(RAND_OPS), (count,), generator=self.generator, device=self.device)
            op = torch.where(self._chance(spec.prob, count), op, torch.full_like(op, -1))  # -1: skipped
            level = self._magnitudes(spec, count) / _LEVEL_DENOM
            sign = torch.where(self._chance(0.5, count), -1.0, 1.0)
            batch = self.apply_ops(batch, op, level, sign, increasing=spec.increasing)
        return batch

    def apply_ops(self, batch: torch.Tensor, op: torch.Tensor, level: torch.Tensor, sign: torch.Tensor, *,
                  increasing: bool) -> torch.Tensor:
        """One RandAugment layer: image i gets ``RAND_OPS[op[i]]`` (none when -1) at ``level[i]`` in
        0..1 (timm's magnitude / 10), negated where ``sign[i]`` is -1 for the signed operations."""
        batch = self._lut_ops(batch, op, level, increasing)
        enhance = [(name, op == RAND_OPS.index(name)) for name in _ENHANCE_OPS]
        batch = _enhance(batch, enhance, _enhance_factor(level, sign, increasing))
        return self._affine_ops(batch, op, level, sign)

    def _magnitudes(self, spec: RandAugmentSpec, count: int) -> torch.Tensor:
        if math.isinf(spec.magnitude_std):
            magnitude = self._uniform(0.0, spec.magnitude, count)
        else:
            noise = torch.randn(count, generator=self.generator, device=self.device)
            magnitude = spec.magnitude + spec.magnitude_std * noise
        return magnitude.clamp(0.0, spec.magnitude_max)

    def _lut_ops(self, batch: torch.Tensor, op: torch.Tensor, level: torch.Tensor, increasing: bool) -> torch.Tensor:
        """AutoContrast, Equalize, Invert, Posterize, Solarize and SolarizeAdd as one 256-entry table
        per image and channel (identity for the other images), applied by one gather."""
        count, channels = batch.shape[:2]
        flat = batch.reshape(count, channels, -1).long()
        values = torch.arange(256, device=self.device, dtype=torch.float32).expand(count, channels, 256)
        table = values.clone()

        def chosen(name: str) -> torch.Tensor:
            return (op == RAND_OPS.index(name)).view(-1, 1, 1)

        table = torch.where(chosen("AutoContrast"), _autocontrast_table(flat, values), table)
        table = torch.where(chosen("Equalize"), _equalize_table(flat, values), table)
        table = torch.where(chosen("Invert"), 255 - values, table)
        bits = torch.floor(level * 4)
        bits = (4 - bits) if increasing else bits
        step = (2 ** (8 - bits)).view(-1, 1, 1)  # keep the top `bits` bits (0 bits: all zero)
        table = torch.where(chosen("Posterize"), torch.floor(values / step) * step, table)
        threshold = torch.clamp(torch.floor(level * 256), max=256)
        threshold = (256 - threshold) if increasing else threshold
        table = torch.where(chosen("Solarize"), torch.where(values >= threshold.view(-1, 1, 1), 255 - values, values), table)
        add = torch.clamp(torch.floor(level * 110), max=128).view(-1, 1, 1)
        table = torch.where(chosen("SolarizeAdd"), torch.where(values < 128, (values + add).clamp(max=255), values), table)
        return table.gather(2, flat).view_as(batch)

    def _affine_ops(self, batch: torch.Tensor, op: torch.Tensor, level: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
        """Rotate (±30°), ShearX/Y (±0.3) and TranslateX/YRel (±45 %) as PIL's affine transform maps
        each output pixel to its source, one grid_sample for the batch; outside pixels get the mean colour."""
        count, _channels, height, width = batch.shape
        matrix = torch.zeros(count, 2, 3, device=self.device)
        matrix[:, 0, 0] = 1.0
        matrix[:, 1, 1] = 1.0

        def chosen(name: str) -> torch.Tensor:
            return op == RAND_OPS.index(name)

        angle = -torch.deg2rad(level * 30.0 * sign) * chosen("Rotate")  # PIL: positive degrees turn anticlockwise
        cos, sin = torch.cos(angle), torch.sin(angle)
        centre_x, centre_y = width / 2.0, height / 2.0
        matrix[:, 0, 0], matrix[:, 0, 1] = cos, sin
        matrix[:, 1, 0], matrix[:, 1, 1] = -sin, cos
        matrix[:, 0, 2] = centre_x - cos * centre_x - sin * centre_y
        matrix[:, 1, 2] = centre_y + sin * centre_x - cos * centre_y
        shear = level * 0.3 * sign
        matrix[:, 0, 1] += shear * chosen("ShearX")
        matrix[:, 1, 0] += shear * chosen("ShearY")
        shift = level * 0.45 * sign
        matrix[:, 0, 2] += shift * width * chosen("TranslateXRel")
        matrix[:, 1, 2] += shift * height * chosen("TranslateYRel")
        return _warp(batch, matrix, self.fill)

    # ------------------------------------------------------------------ erasing and mixing
    def _random_erase(self, batch: torch.Tensor) -> torch.Tensor:
        """timm RandomErasing (mode 'pixel', as train.py uses): with probability re_prob one box of
        2–33 % of the area, aspect 0.3–3.3, filled with normal noise in normalised units."""
        probability = float(self.options["re_prob"])
        if probability <= 0:
            return batch
        count, _channels, height, width = batch.shape
        area = self._uniform(0.02, 1 / 3, count, _ATTEMPTS) * (height * width)
        aspect = torch.exp(self._uniform(math.log(0.3), math.log(1 / 0.3), count, _ATTEMPTS))
        box_h = torch.round(torch.sqrt(area * aspect))
        box_w = torch.round(torch.sqrt(area / aspect))
        fits = (box_w < width) & (box_h < height)
        first = fits.float().argmax(dim=1, keepdim=True)
        box_h, box_w = box_h.gather(1, first).squeeze(1), box_w.gather(1, first).squeeze(1)
        erase = fits.any(dim=1) & self._chance(probability, count)
        top = torch.floor(self._uniform(0.0, 1.0, count) * (height - box_h + 1))
        left = torch.floor(self._uniform(0.0, 1.0, count) * (width - box_w + 1))
        rows = torch.arange(height, device=self.device).view(1, -1, 1)
        cols = torch.arange(width, device=self.device).view(1, 1, -1)
        inside = ((rows >= top.view(-1, 1, 1)) & (rows < (top + box_h).view(-1, 1, 1))
                  & (cols >= left.view(-1, 1, 1)) & (cols < (left + box_w).view(-1, 1, 1)))
        mask = (inside & erase.view(-1, 1, 1)).unsqueeze(1)
        noise = torch.randn(batch.shape, generator=self.generator, device=self.device, dtype=batch.dtype)
        return torch.where(mask, noise, batch)

    def _mix(self, batch: torch.Tensor) -> tuple[torch.Tensor, float]:
        """timm Mixup in its 'batch' mode (train.py's default): one lambda per batch, each image mixed
        with its mirror in the batch; mixup or cutmix (half the time each when both are on). Returns
        the mixed batch and the share of each image's own label."""
        mixup_alpha, cutmix_alpha = float(self.options["mixup"]), float(self.options["cutmix"])
        use_cutmix = cutmix_alpha > 0 and (mixup_alpha <= 0 or self.host_random.random() < 0.5)
        lam = self.host_random.betavariate(cutmix_alpha, cutmix_alpha) if use_cutmix else \
            self.host_random.betavariate(mixup_alpha, mixup_alpha)
        mirrored = batch.flip(0)
        if use_cutmix:
            height, width = batch.shape[-2:]
            cut = math.sqrt(1 - lam)
            cut_h, cut_w = int(height * cut), int(width * cut)
            centre_y, centre_x = self.host_random.randrange(height), self.host_random.randrange(width)
            y0, y1 = max(centre_y - cut_h // 2, 0), min(centre_y + cut_h // 2, height)
            x0, x1 = max(centre_x - cut_w // 2, 0), min(centre_x + cut_w // 2, width)
            mixed = batch.clone()
            mixed[:, :, y0:y1, x0:x1] = mirrored[:, :, y0:y1, x0:x1]
            lam = 1.0 - (y1 - y0) * (x1 - x0) / float(height * width)
        else:
            mixed = batch * lam + mirrored * (1.0 - lam)
        return mixed, lam


def stream_seed(seed: int) -> int:
    """The seed of the augmentation's own random stream: ``seed`` mixed with a constant, so the
    augmentation never replays the draws of a generator seeded with the same number (the epoch's
    shuffle, ``adapters.timm_data.epoch_order``, is seeded with the same per-epoch value)."""
    return (seed * 6364136223846793005 + _STREAM_SALT) % (1 << 63)


def _resized(images: torch.Tensor, side: int) -> torch.Tensor:
    """uint8 images at ``side`` (bilinear with antialiasing, as PIL resizes); unchanged when already there."""
    if images.shape[-2:] == (side, side):
        return images
    resized = F.interpolate(images.float(), size=(side, side), mode="bilinear", antialias=True, align_corners=False)
    return resized.clamp(0, 255).round().to(torch.uint8)


# ---------------------------------------------------------------------- batched PIL operations
def _gray(batch: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor(_GRAY, device=batch.device, dtype=batch.dtype).view(1, 3, 1, 1)
    return torch.round((batch * weights).sum(dim=1, keepdim=True))


def _smoothed(batch: torch.Tensor) -> torch.Tensor:
    """PIL's SMOOTH filter (ImageEnhance.Sharpness' blurred image): borders keep their pixels."""
    kernel = torch.tensor([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]], device=batch.device) / 13.0
    channels = batch.shape[1]
    blurred = F.conv2d(batch, kernel.expand(channels, 1, 3, 3).contiguous(), padding=1, groups=channels).round()
    result = batch.clone()
    result[:, :, 1:-1, 1:-1] = blurred[:, :, 1:-1, 1:-1]
    return result


def _enhance(batch: torch.Tensor, chosen: list[tuple[str, torch.Tensor]], factor: torch.Tensor) -> torch.Tensor:
    """PIL ImageEnhance (Color, Contrast, Brightness, Sharpness): blend each image with its degenerate
    image by its own factor; images whose op is none of these pass unchanged."""
    degenerate = batch
    applied = torch.zeros(batch.shape[0], dtype=torch.bool, device=batch.device)
    for name, mask in chosen:
        if name == "Color":
            target = _gray(batch).expand_as(batch)
        elif name == "Contrast":
            target = torch.round(_gray(batch).mean(dim=(1, 2, 3), keepdim=True)).expand_as(batch)
        elif name == "Brightness":
            target = torch.zeros_like(batch)
        else:
            target = _smoothed(batch)
        degenerate = torch.where(mask.view(-1, 1, 1, 1), target, degenerate)
        applied = applied | mask
    factor = torch.where(applied, factor, torch.ones_like(factor)).view(-1, 1, 1, 1)
    return (degenerate + factor * (batch - degenerate)).clamp(0, 255).floor()  # PIL blend truncates


def _enhance_factor(level: torch.Tensor, sign: torch.Tensor, increasing: bool) -> torch.Tensor:
    if increasing:
        return torch.clamp(1.0 + sign * level * 0.9, min=0.1)
    return level * 1.8 + 0.1


def _autocontrast_table(flat: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    low = flat.amin(dim=2, keepdim=True).float()
    high = flat.amax(dim=2, keepdim=True).float()
    scale = 255.0 / (high - low).clamp(min=1)
    stretched = ((values - low) * scale).clamp(0, 255).floor()
    return torch.where(high > low, stretched, values)


def _equalize_table(flat: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """PIL ImageOps.equalize per image and channel: the cumulative histogram without the last used
    level, in steps of (pixels - last level's count) // 255."""
    count, channels, _pixels = flat.shape
    histogram = torch.zeros(count, channels, 256, device=flat.device).scatter_add_(2, flat, torch.ones_like(flat, dtype=torch.float32))
    last_used = 255 - (histogram > 0).flip(2).float().argmax(dim=2, keepdim=True)
    step = torch.floor((histogram.sum(dim=2, keepdim=True) - histogram.gather(2, last_used)) / 255)
    before = torch.cumsum(histogram, dim=2) - histogram
    table = torch.floor((torch.floor(step / 2) + before) / step.clamp(min=1)).clamp(max=255)
    return torch.where(step > 0, table, values)


def _warp(batch: torch.Tensor, matrix: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
    """Sample each output pixel centre at ``matrix @ (x, y, 1)`` (PIL AFFINE data, pixel units),
    bilinear; source points outside the image take ``fill`` in proportion."""
    count, _channels, height, width = batch.shape
    ys, xs = torch.meshgrid(torch.arange(height, device=batch.device, dtype=torch.float32) + 0.5,
                            torch.arange(width, device=batch.device, dtype=torch.float32) + 0.5, indexing="ij")
    points = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1).view(1, -1, 3)
    source = points @ matrix.transpose(1, 2)  # (N, H*W, 2) in pixels
    grid = torch.stack([source[..., 0] * (2.0 / width) - 1.0, source[..., 1] * (2.0 / height) - 1.0], dim=-1)
    grid = grid.view(count, height, width, 2)
    with_ones = torch.cat([batch, torch.ones_like(batch[:, :1])], dim=1)
    sampled = F.grid_sample(with_ones, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    inside = sampled[:, -1:]
    result = sampled[:, :-1] + (1.0 - inside) * fill.view(1, -1, 1, 1)
    return result.clamp(0, 255).round()
