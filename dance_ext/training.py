"""Training-loop pieces shared by evaluation (evaluate.py) and expert pretraining
(experts.py): CutMix, one epoch with per-sample DSA, test accuracy, normalisation.

Every random draw comes from an explicit CPU ``torch.Generator`` (shuffles, DSA rows,
CutMix), so a run is a function of its seed (utils.py).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from . import ops
from .augment_params import sample_params
from .checks import describe

#: Batch of the test-accuracy pass. Inference only: ConvNet's instance norm (and any
#: BatchNorm in eval mode) makes the result independent of it.
TEST_BATCH = 512









def cutmix(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None):
    """CutMix one batch (docs/ALGORITHMS.md §3.3): returns ``(x_mixed, y, y_perm, ratio)``.

    λ ~ Beta(1, 1) = U[0, 1), r = √(1−λ). As in the official ``rand_bbox`` (whose
    variable names call dim 2 "W"), the box spans rows ``[c_h − ⌊H·r⌋//2, c_h + ⌊H·r⌋//2)``
    and columns ``[c_w − ⌊W·r⌋//2, c_w + ⌊W·r⌋//2)`` with centres uniform over the
    integer pixels, clipped to the image; there ``x[π]`` is pasted. ``ratio`` is the
    uncovered fraction 1 − box_area/(H·W), so the loss is
    ``ratio·CE(y) + (1−ratio)·CE(y_perm)`` (see :func:`cutmix_loss`). ``x`` is not
    modified. Python ``int`` throughout (the official ``np.int`` crashes on NumPy ≥ 1.24).
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ValueError(f"x: expected a 4-D (N, C, H, W) tensor, got {describe(x)}")
    if not isinstance(y, torch.Tensor) or y.shape != (x.shape[0],):
        raise ValueError(f"y: expected a label tensor of shape ({x.shape[0]},), got {describe(y)}")
    n, _, height, width = x.shape
    lam = float(torch.rand((), generator=generator))
    perm = torch.randperm(n, generator=generator).to(x.device, non_blocking=True)
    r = math.sqrt(1.0 - lam)
    half_h, half_w = int(height * r) // 2, int(width * r) // 2
    centre_h = int(torch.randint(height, (), generator=generator))
    centre_w = int(torch.randint(width, (), generator=generator))
    h0, h1 = max(centre_h - half_h, 0), min(centre_h + half_h, height)
    w0, w1 = max(centre_w - half_w, 0), min(centre_w + half_w, width)
    mixed = x.clone()
    mixed[:, :, h0:h1, w0:w1] = x[perm, :, h0:h1, w0:w1]
    ratio = 1.0 - (h1 - h0) * (w1 - w0) / (height * width)
    return mixed, y, y.index_select(0, perm), ratio


def cutmix_loss(logits: torch.Tensor, y: torch.Tensor, y_perm: torch.Tensor, ratio: float) -> torch.Tensor:
    return ratio * F.cross_entropy(logits, y) + (1.0 - ratio) * F.cross_entropy(logits, y_perm)


def train_epoch(model: torch.nn.Module, opt: torch.optim.Optimizer, images: torch.Tensor,
                labels: torch.Tensor, batch_size: int, generator: torch.Generator,
                dsa_strategy: str | None = None, dsa_convention: str = "vico", cutmix_p: float = 0.0,
                normalize: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """One shuffled pass over ``images``/``labels`` (already on the model's device),
    batches of ``batch_size`` (the last one may be smaller, as with a DataLoader
    without drop_last).

    Per batch, under no_grad: ``normalize`` (if given), then DSA with per-sample rows
    and one geometric op chosen per batch (the official non-siamese evaluation mode).
    Then, with probability ``cutmix_p``, CutMix. Returns the sample-weighted mean loss
    as a 0-dim tensor on the device (no host sync)."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
    if not 0.0 <= cutmix_p <= 1.0:
        raise ValueError(f"cutmix_p: expected a probability in [0, 1], got {cutmix_p!r}")
    n = images.shape[0]
    image_size = tuple(images.shape[-2:])
    order = torch.randperm(n, generator=generator).to(images.device, non_blocking=True)
    model.train()
    total = torch.zeros((), device=images.device)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        x, y = images.index_select(0, idx), labels.index_select(0, idx)
        with torch.no_grad():
            if normalize is not None:
                x = normalize(x)
            if dsa_strategy:
                params = sample_params(x.shape[0], dsa_strategy, image_size, dsa_convention,
                                       one_op_per_call=True, generator=generator, device=x.device)
                x = ops.siamese_augment(x, params)
        if cutmix_p > 0.0 and float(torch.rand((), generator=generator)) < cutmix_p:
            x, y_a, y_b, ratio = cutmix(x, y, generator)
            loss = cutmix_loss(model(x), y_a, y_b, ratio)
        else:
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.detach() * x.shape[0]
    return total / n


@torch.no_grad()
def accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
             batch_size: int = TEST_BATCH,
             normalize: Callable[[torch.Tensor], torch.Tensor] | None = None) -> float:
    """Top-1 accuracy in % of ``model`` (eval mode) on ``images`` (on the model's device)."""
    if images.shape[0] == 0:
        raise ValueError("images: expected at least one test image")
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=images.device)
    for start in range(0, images.shape[0], batch_size):
        x = images[start:start + batch_size]
        if normalize is not None:
            x = normalize(x)
        correct += (model(x).argmax(dim=1) == labels[start:start + batch_size]).sum()
    return 100.0 * int(correct) / images.shape[0]


def normalizer(mean, std, channels: int, device) -> Callable[[torch.Tensor], torch.Tensor]:
    """x ↦ (x − mean)/std per channel; ``mean``/``std`` are scalars or per-channel sequences."""
    def column(values, name):
        t = torch.as_tensor(values, dtype=torch.float32, device=device).reshape(-1)
        if t.numel() == 1:
            t = t.expand(channels)
        if t.numel() != channels:
            raise ValueError(f"{name}: expected 1 or {channels} values (one per channel), got {t.numel()}")
        return t.reshape(1, channels, 1, 1).contiguous()

    mean_t, std_t = column(mean, "mean"), column(std, "std")
    if bool((std_t <= 0).any()):
        raise ValueError(f"std: expected positive values, got {std!r}")
    return lambda x: (x - mean_t) / std_t
