"""Train-on-synthetic / test-on-real evaluation under the protocols of protocols.py
(docs/ALGORITHMS.md §1.6 DM, §3.11 DANCE):

the papers' training recipe on the synthetic set, then the test accuracy on real data.
The official DANCE code reports the best test accuracy over its checkpoints: that selects
on the test set, so it is reported as ``best_*`` beside the last-epoch accuracy.

Every run trains a fresh network whose initialisation and training randomness come from
seeds derived from (seed, run): results are reproducible for a given seed on the CPU.
"""
from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import torch

from . import protocols
from .checks import describe, hw, is_int
from .data import ClassData, as_class_data, check_finite, check_pixel_range
from .data.pixels import SYNTHETIC_SLACK
from .models.external import arch_label, network_builder
from .progress import progress_bar
from .protocols import PROTOCOLS, Protocol
from .training import accuracy, normalizer, train_epoch
from .utils import derive_seed, make_generator, resolve_device, seeded_network

_SEED_TAG = 1  # keeps evaluation streams apart from other users of derive_seed


def _protocol(name: str, dataset: str | None, images_per_class: int, num_classes: int, epochs, batch_size,
              eval_every) -> Protocol:
    """The paper's protocol with the caller's overrides."""
    for arg, value in (("epochs", epochs), ("batch_size", batch_size), ("eval_every", eval_every)):
        if value is not None and (not is_int(value) or value < 1):
            raise ValueError(f"{arg}: expected a positive int or None, got {value!r}")
    default = protocols.protocol(name, dataset, images_per_class, num_classes)
    return replace(default, batch_size=batch_size or default.batch_size, epochs=epochs or default.epochs,
                   eval_every=eval_every or default.eval_every)


def _unpack(result):
    """(images, labels, meta) of a condensation result: anything with ``.decoded()`` and
    ``.meta``, a ClassData, or an (images, labels) pair."""
    if hasattr(result, "decoded") and hasattr(result, "meta"):
        images, labels = result.decoded()
        meta = dict(result.meta)
    elif isinstance(result, ClassData):
        images, labels, meta = result.images, result.labels, {"dataset": result.name}
    elif isinstance(result, (tuple, list)) and len(result) == 2:
        (images, labels), meta = result, {}
    else:
        raise TypeError(f"result: expected a condensation result (with .decoded() and .meta), a ClassData "
                        f"or an (images, labels) pair, got {type(result).__name__}")
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or not images.is_floating_point():
        raise ValueError(f"result: expected float images of shape (N, C, H, W), got "
                         f"{getattr(images, 'shape', type(images).__name__)}")
    if (not isinstance(labels, torch.Tensor) or labels.dim() != 1 or labels.shape[0] != images.shape[0]
            or labels.is_floating_point()):
        raise ValueError(f"result: expected integer labels of shape ({images.shape[0]},), got "
                         f"{getattr(labels, 'shape', type(labels).__name__)}")
    if images.shape[0] == 0:
        raise ValueError("result: the synthetic set is empty")
    check_finite(images, "result")
    if isinstance(result, (tuple, list)):  # condense's rule; a synthetic set is unclamped after its last step
        check_pixel_range(images, "result", slack=SYNTHETIC_SLACK)
    return images, labels.long(), meta


def _check_against_test(images, labels, num_classes, test: ClassData) -> None:
    ch, size = images.shape[1], tuple(images.shape[-2:])
    if ch != test.channels or size != hw(test.image_size):
        raise ValueError(f"test: its images are {test.channels}×{hw(test.image_size)} (channels × (H, W)) "
                         f"but the synthetic images are {ch}×{size}; evaluate on the dataset they were made from")
    if num_classes != test.num_classes:
        raise ValueError(f"test: it has {test.num_classes} classes but the synthetic set has {num_classes}")
    if int(labels.min()) < 0 or int(labels.max()) >= num_classes:
        raise ValueError(f"result: labels must lie in [0, {num_classes}), got [{int(labels.min())}, "
                         f"{int(labels.max())}]")


def evaluate(result, test, arch="convnet", runs: int = 3, epochs: int | None = None, seed: int = 0,
             protocol: str | None = None, device=None, batch_size: int | None = None, width: int | None = None,
             depth: int | None = None, progress: bool = True, eval_every: int | None = None) -> dict:
    """Train ``runs`` fresh ``arch`` networks on the synthetic set and test them on ``test``.

    ``result``: an object with ``.decoded() -> (images, labels)`` (images in [0, 1] pixel
    space, (N, C, H, W); int labels) and a ``.meta`` dict with at least "method",
    "dataset", "mean", "std", "num_classes"; or a ClassData / (images, labels) pair in
    [0, 1], whose normalisation and class count are then taken from ``test``.
    ``test``: anything ``data.as_class_data(test, split="test")`` accepts (a dataset
    name resolves to its test split). ``protocol``: "dm", "dance", or None = "dance"
    when meta["method"] == "dance" else "dm". ``epochs``, ``batch_size``, ``eval_every``
    override the protocol's values; ``width``/``depth`` the network's (128 / per image size).
    ``arch``: a name of ``models.ARCHS``, "timm:<name>" or a callable (channels, num_classes, image_size) -> nn.Module.

    Returns a dict: ``runs`` (last-epoch test accuracies in %), ``mean`` and ``std``
    (of ``runs``; population std, ddof 0, as NumPy's default used by the papers),
    ``best_runs``/``best_mean``/``best_std`` (best over the test checkpoints: optimistic,
    it selects on the test set), ``protocol``, ``epochs`` (E; the DM protocol runs E+1),
    ``epochs_run``, ``arch``, ``seconds`` and the settings used.
    """
    start_time = time.perf_counter()
    images, labels, meta = _unpack(result)
    _check_runs_and_seed(runs, seed)
    if protocol is None:
        protocol = "dance" if meta.get("method") == "dance" else "dm"
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol: expected one of {PROTOCOLS} or None, got {protocol!r}")
    device = resolve_device(device)
    test_data = as_class_data(test, split="test", device=device)
    num_classes = int(meta.get("num_classes", test_data.num_classes))
    _check_against_test(images, labels, num_classes, test_data)
    dataset = meta.get("dataset", test_data.name)
    per_class = int(torch.bincount(labels, minlength=num_classes).max())
    proto = _protocol(protocol, dataset, per_class, num_classes, epochs, batch_size, eval_every)
    build, spec = network_builder(arch, images.shape[1], num_classes, tuple(images.shape[-2:]),
                                  128 if width is None else width, depth)
    normalize = normalizer(meta.get("mean", test_data.mean), meta.get("std", test_data.std), images.shape[1], device)
    images, labels = images.to(device, torch.float32), labels.to(device)
    _check_logits(seeded_network(build, 0, device), normalize(images[:2]), num_classes, spec["arch"])
    test_images, test_labels = test_data.images.to(device, torch.float32), test_data.labels.to(device)

    last, best = [], []
    for run in progress_bar(range(runs), desc=f"evaluate ({proto.name})", disable=not progress):
        model = seeded_network(build, derive_seed(seed, _SEED_TAG, run, 0), device)
        gen = make_generator(derive_seed(seed, _SEED_TAG, run, 1))
        accs = _train_run(model, proto, images, labels, test_images, test_labels, gen, normalize, progress)
        last.append(accs[-1])
        best.append(max(accs))
    return {
        "mean": float(np.mean(last)), "std": float(np.std(last)), "runs": last,
        "best_mean": float(np.mean(best)), "best_std": float(np.std(best)), "best_runs": best,
        "protocol": proto.name, "epochs": proto.epochs, "epochs_run": proto.epochs_run, "arch": arch_label(arch),
        "network": spec, "batch_size": proto.batch_size, "strategy": proto.strategy,
        "cutmix_p": proto.cutmix_p, "eval_every": proto.eval_every, "seed": seed,
        "train_images": int(images.shape[0]), "test_images": int(test_images.shape[0]),
        "seconds": time.perf_counter() - start_time,
    }


def _check_runs_and_seed(runs, seed) -> None:
    if not isinstance(runs, int) or isinstance(runs, bool) or runs < 1:
        raise ValueError(f"runs: expected an int >= 1, got {runs!r}")
    derive_seed(seed)  # validates seed


@torch.no_grad()
def _check_logits(model, x: torch.Tensor, num_classes: int, name: str) -> None:
    """Networks from outside (callables, timm) must map images to (N, num_classes) logits: one
    probe forward in eval mode, before any training."""
    model.eval()
    out = model(x)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (x.shape[0], num_classes):
        raise ValueError(f"arch: {name} maps {x.shape[0]} images to {describe(out)}; expected logits of shape "
                         f"({x.shape[0]}, {num_classes})")


def _train_run(model, proto: Protocol, images, labels, test_images, test_labels, gen, normalize,
               progress: bool) -> list[float]:
    """Train one network under ``proto``; the test accuracies at its checkpoints (the
    epochs that are multiples of ``eval_every``, counted from 1, and the last one)."""
    def optimizer(lr):
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=proto.momentum,
                               weight_decay=proto.weight_decay)

    opt = optimizer(proto.lr)
    scheduler = None
    if proto.name == "dance":
        scheduler = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=proto.milestones, gamma=0.2)
    total = proto.epochs_run
    accs = []
    bar = progress_bar(range(total), desc="epochs", leave=False, disable=not progress)
    for ep in bar:
        train_epoch(model, opt, images, labels, proto.batch_size, gen, proto.strategy, proto.convention,
                    proto.cutmix_p, normalize)
        if scheduler is not None:
            scheduler.step()
        elif ep == proto.epochs // 2 + 1:  # DM: lr × 0.1 and a fresh optimizer (momentum reset)
            opt = optimizer(proto.lr * 0.1)
        if ep + 1 == total or (proto.eval_every and (ep + 1) % proto.eval_every == 0):
            accs.append(accuracy(model, test_images, test_labels, normalize=normalize))
            bar.set_postfix(test_acc=f"{accs[-1]:.2f}")
    return accs
