"""Timing baseline for bench_iteration: one DANCE and one DM outer iteration done the way
the official scripts do them (docs/ALGORITHMS.md §1.3, §3.5, §5), on dance_ext's data
structures but with none of its fixes.

DANCE (per iteration): expert k drawn with Python ``random``; its init and trained state
dicts read from disk with two ``torch.load``; θ_mid interpolated parameter by parameter in
a Python loop; all three networks keep ``requires_grad=True`` and their ``.grad`` is never
zeroed, so every backward also computes weight gradients; per class: a real batch built
with ``torch.stack`` over a Python list of per-image tensors, decode of that class, one
augmentation row for ``cat([R, S])``, the feature-mean loss, ``zero_grad``/``backward``/
``step`` and ``loss.item()``; then the calibration loop, per class, likewise.

DM (per iteration): a fresh ConvNet built on the CPU and moved to the device, frozen; per
class: a NumPy permutation of the class's index list, two augmentation calls sharing one
row, the feature-mean loss accumulated; one step and one ``loss.item()``.

Random draws are not shared with dance_ext's loop; the work per iteration is the same
(batch sizes, ipc, factor, decode, calibration rounds). The official DM also reseeds torch
from the wall clock when it builds the network; that only affects reproducibility and is
left out.
"""
from __future__ import annotations

import math
import os
import random

import numpy as np
import torch
import torch.nn.functional as F

from dance_ext import reference
from dance_ext.augment_params import DANCE_STRATEGY, DM_STRATEGY, sample_params
from dance_ext.data import ClassData, as_class_data
from dance_ext.models import get_network
from dance_ext.synthetic import initial_images


def expert_paths(folder: str, k: int) -> tuple[str, str]:
    """The official store's file names of expert k: (init, trained)."""
    return (os.path.join(folder, f"premodel{k}_init.pth.tar"),
            os.path.join(folder, f"premodel{k}_trained.pth.tar"))


def write_expert_store(folder: str, init_states: list[dict], trained_states: list[dict]) -> None:
    """Save expert state dicts as the official pretraining does: two ``torch.save`` files
    per expert. Tensors keep their device, so ``torch.load`` puts them back there."""
    if len(init_states) != len(trained_states) or not init_states:
        raise ValueError(f"init_states/trained_states: expected equally many (>= 1), got "
                         f"{len(init_states)} and {len(trained_states)}")
    os.makedirs(folder, exist_ok=True)
    for k, (init, trained) in enumerate(zip(init_states, trained_states)):
        init_path, trained_path = expert_paths(folder, k)
        torch.save(init, init_path)
        torch.save(trained, trained_path)


class ClassMemLoader:
    """DANCE's ClassMemDataLoader: the images as a Python list of per-image device tensors;
    each class cycles through its own shuffled order without replacement (drop_last)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, num_classes: int, batch: int, rng: random.Random):
        self.images = list(images.unbind(0))
        self.by_class = [(labels == c).nonzero().flatten().tolist() for c in range(num_classes)]
        self.batch = {c: min(batch, len(idx)) for c, idx in enumerate(self.by_class)}
        self.queue: list[list[int]] = [[] for _ in range(num_classes)]
        self.rng = rng

    def class_sample(self, c: int) -> torch.Tensor:
        if len(self.queue[c]) < self.batch[c]:
            order = list(self.by_class[c])
            self.rng.shuffle(order)
            self.queue[c] = order
        chosen, self.queue[c] = self.queue[c][:self.batch[c]], self.queue[c][self.batch[c]:]
        return torch.stack([self.images[i] for i in chosen])


def decode_zoom(images: torch.Tensor, factor: int) -> torch.Tensor:
    """One class's multi-formation decode, crop by crop (§3.4): pad with 0.5 to a multiple
    of f, cut the f² crops, upsample them bilinearly; crop-major order."""
    if factor == 1:
        return images
    h, w = images.shape[-2:]
    crop_h, crop_w = math.ceil(h / factor), math.ceil(w / factor)
    pad_h, pad_w = crop_h * factor - h, crop_w * factor - w
    if pad_h or pad_w:
        images = F.pad(images, (0, pad_w, 0, pad_h), value=0.5)
    crops = [images[:, :, i * crop_h:(i + 1) * crop_h, j * crop_w:(j + 1) * crop_w]
             for i in range(factor) for j in range(factor)]
    return F.interpolate(torch.cat(crops), size=(h, w), mode="bilinear", align_corners=False)


class OfficialDance:
    """DANCE's ``Synthesizer`` + ``condense`` loop body. ``data``: ClassData in [0, 1] on
    the run's device; ``expert_dir``: a folder written by :func:`write_expert_store`."""

    def __init__(self, data: ClassData, expert_dir: str, num_experts: int, ipc: int = 10, factor: int = 2,
                 batch_real: int = 128, batch_syn_max: int = 200, iter_calib: int = 1, lr: float | None = None,
                 width: int = 128, depth: int | None = None, seed: int = 0):
        self.data, self.expert_dir, self.num_experts = data, expert_dir, num_experts
        self.ipc, self.factor, self.iter_calib, self.batch_syn_max = ipc, factor, iter_calib, batch_syn_max
        self.device, self.num_classes = data.device, data.num_classes
        self.rng = random.Random(seed)
        self.gen = torch.Generator().manual_seed(seed)
        self.loader = ClassMemLoader(data.images, data.labels, data.num_classes, batch_real, self.rng)
        self.mean = torch.tensor(data.mean, device=self.device).view(1, -1, 1, 1)
        self.std = torch.tensor(data.std, device=self.device).view(1, -1, 1, 1)
        init = "mix" if factor > 1 else "first"
        self.syn = initial_images(data, ipc, init, factor, self.gen, pixel_space=True).requires_grad_(True)
        self.opt = torch.optim.SGD([self.syn], lr=0.01 * ipc if lr is None else lr, momentum=0.5)

        def net():
            spec = (data.channels, data.num_classes, data.image_size, width, depth)
            return get_network("convnet", *spec).to(self.device)

        # trainable parameters, as in the official code: every backward also fills their .grad
        self.model_init, self.model_final, self.model_mid = net(), net(), net()

    def _aug(self, x: torch.Tensor) -> torch.Tensor:
        """Normalize, then one IDC-convention parameter row for the whole batch."""
        row = sample_params(1, DANCE_STRATEGY, self.data.image_size, "idc", generator=self.gen).to(self.device)
        return reference.siamese_augment((x - self.mean) / self.std, row)

    def _sample(self, c: int) -> torch.Tensor:
        decoded = decode_zoom(self.syn[c * self.ipc:(c + 1) * self.ipc], self.factor)
        if decoded.shape[0] > self.batch_syn_max:
            keep = torch.randperm(decoded.shape[0], generator=self.gen)[:self.batch_syn_max].to(self.device)
            decoded = decoded[keep]
        return decoded

    def iteration(self) -> tuple[float, float]:
        """One outer iteration; returns the mean inner and calibration losses per class."""
        k = self.rng.randint(0, self.num_experts - 1)
        init_path, trained_path = expert_paths(self.expert_dir, k)
        self.model_init.load_state_dict(torch.load(init_path, map_location=self.device))
        self.model_final.load_state_dict(torch.load(trained_path, map_location=self.device))
        lam = float(torch.rand(1, generator=self.gen))
        for p_mid, p_init, p_final in zip(self.model_mid.parameters(), self.model_init.parameters(),
                                          self.model_final.parameters()):
            p_mid.data = lam * p_init.data + (1 - lam) * p_final.data
        self.syn.data.clamp_(0, 1)

        inner_total = 0.0
        for c in range(self.num_classes):
            real = self.loader.class_sample(c)
            syn = self._sample(c)
            z = self._aug(torch.cat([real, syn]))
            with torch.no_grad():
                f_real = self.model_mid.embed(z[:real.shape[0]])
            f_syn = self.model_mid.embed(z[real.shape[0]:])
            loss = (f_real.mean(0) - f_syn.mean(0)).pow(2).sum()
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            inner_total += loss.item()

        calib_total = 0.0
        for _ in range(self.iter_calib):
            for c in range(self.num_classes):
                syn = self._sample(c)
                target = torch.full((syn.shape[0],), c, dtype=torch.int64, device=self.device)
                loss = F.cross_entropy(self.model_final(self._aug(syn)), target)
                self.opt.zero_grad()
                loss.backward()
                self.opt.step()
                calib_total += loss.item()
        return inner_total / self.num_classes, calib_total / max(1, self.iter_calib * self.num_classes)


class OfficialDM:
    """DM's ``main_DM.py`` loop body. ``data``: ClassData in [0, 1] on the run's device."""

    def __init__(self, data: ClassData, ipc: int = 10, batch_real: int = 256, lr: float = 1.0, width: int = 128,
                 depth: int | None = None, seed: int = 0):
        self.data, self.ipc, self.batch_real, self.width, self.depth = data, ipc, batch_real, width, depth
        self.device, self.num_classes = data.device, data.num_classes
        self.np_rng = np.random.RandomState(seed)
        self.gen = torch.Generator().manual_seed(seed)
        self.images_all = data.normalize(data.images)
        labels = data.labels.tolist()
        self.indices_class = [[i for i, y in enumerate(labels) if y == c] for c in range(self.num_classes)]
        self.syn = initial_images(data, ipc, "real", 1, self.gen, pixel_space=False).requires_grad_(True)
        self.opt = torch.optim.SGD([self.syn], lr=lr, momentum=0.5)

    def iteration(self) -> float:
        """One iteration; returns the loss per class."""
        net = get_network("convnet", self.data.channels, self.num_classes, self.data.image_size, self.width,
                          self.depth).to(self.device)
        net.train()
        for p in net.parameters():
            p.requires_grad = False
        loss = torch.tensor(0.0, device=self.device)
        for c in range(self.num_classes):
            chosen = self.np_rng.permutation(self.indices_class[c])[:self.batch_real]
            real = self.images_all[torch.as_tensor(chosen, device=self.device)]
            syn = self.syn[c * self.ipc:(c + 1) * self.ipc]
            row = sample_params(1, DM_STRATEGY, self.data.image_size, "vico", generator=self.gen).to(self.device)
            f_real = net.embed(reference.siamese_augment(real, row)).detach()
            f_syn = net.embed(reference.siamese_augment(syn, row))
            loss = loss + (f_real.mean(0) - f_syn.mean(0)).pow(2).sum()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return loss.item() / self.num_classes


def random_expert_states(data: ClassData, num: int, width: int, depth: int | None, seed: int = 0):
    """Stand-ins for pretrained experts: (init, trained) state dicts of ``num`` pairs of
    default-initialised ConvNets on data's device (timing does not depend on the weights)."""
    init, trained = [], []
    with torch.random.fork_rng(devices=[]):  # leaves the caller's global RNG untouched
        torch.manual_seed(seed)
        for _ in range(num):
            for states in (init, trained):
                net = get_network("convnet", data.channels, data.num_classes, data.image_size, width, depth)
                states.append({k: v.to(data.device) for k, v in net.state_dict().items()})
    return init, trained


def self_check(folder: str, device="cpu") -> None:
    """One DANCE and one DM iteration on a tiny problem (3 classes, 8×8 RGB, width 8):
    the losses must be finite and the synthetic images must change."""
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(60, 3, 8, 8, generator=gen)
    labels = torch.arange(3).repeat_interleave(20)
    data = as_class_data((images, labels), device=device)
    init, trained = random_expert_states(data, 2, width=8, depth=None)
    write_expert_store(folder, init, trained)

    dance = OfficialDance(data, folder, num_experts=2, ipc=2, factor=2, batch_real=8, width=8, lr=1.0)
    before = dance.syn.detach().clone()
    inner, calib = dance.iteration()
    assert math.isfinite(inner) and math.isfinite(calib), (inner, calib)
    assert not torch.equal(before, dance.syn.detach()), "DANCE iteration left the synthetic images unchanged"
    # the official inefficiency is reproduced: backward also filled the weight gradients
    used = [*dance.model_mid.features.parameters(), *dance.model_final.parameters()]
    assert all(p.grad is not None for p in used), "weight gradients were not computed"

    dm = OfficialDM(data, ipc=2, batch_real=8, width=8)
    before = dm.syn.detach().clone()
    loss = dm.iteration()
    assert math.isfinite(loss), loss
    assert not torch.equal(before, dm.syn.detach()), "DM iteration left the synthetic images unchanged"
