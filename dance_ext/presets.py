"""Settings of a condensation run: the papers' per-(dataset, ipc, method) values
(docs/ALGORITHMS.md §1.5, §3.8) and a CPU-sized "quick" preset, both scalable by a ``budget``.

``budget`` b in (0, 1] shrinks a preset for machines without a GPU (b = 1: unchanged):

* steps: ``iterations``, ``pretrain_epochs`` (at least ``MIN_EXPERT_EPOCHS``) and
  ``pretrain_num`` × b (the experts used, ``num_experts``, then at most ``pretrain_num``);
* per-step size and evaluation: ``width`` and ``batch_real`` × √b (width rounded up to a
  multiple of 16, batch_real at least 32) and ``eval_epochs`` × √b. Evaluation trains on
  a condensed set, a handful of batches per epoch, so a linear cut would leave its
  networks untrained; likewise class means over fewer than 32 real images get noisy.

Learning rates are kept: they are the papers' (a larger DANCE lr did not help at small
budgets; docs/RESULTS.md). Every scaled value is rounded, at least 1.

A reduced-budget DANCE run (experts of fewer than ``REDUCED_BELOW_EXPERT_EPOCHS`` epochs:
budget below 1/3, and the quick preset) departs from the paper twice (docs/ALGORITHMS.md §7):

* it drops its calibration step and spends that time on iterations
  (× ``CALIBRATION_TIME_AS_ITERATIONS``): the cross-entropy under an expert trained a few epochs
  costs about a third of every iteration and, measured, bought no accuracy;
* above ``MOSAIC_MAX_IPC`` images per class it condenses full-resolution images (factor 1,
  real init) instead of multi-formation mosaics: measured, the mosaics start below a real subset
  there and a reduced budget does not recover it (at 1 and 10 they start well above it).

``departures`` lists every setting of a run that differs from the paper's.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

from . import protocols
from .strategies import DANCE_STRATEGY, DM_STRATEGY
from .protocols import DM_EVAL_EPOCHS, IMAGENET_SUBSETS, PROTOCOLS

METHODS = ("random", "herding", "dm", "dance")
SELECTIONS = ("random", "herding")  # real subsets, chosen without optimisation
# an expert of one or two epochs can still predict one class for everything (chance accuracy),
# which pretraining refuses; small budgets keep this floor
MIN_EXPERT_EPOCHS = 3
PRESETS = ("paper", "quick")
REDUCED_BELOW_EXPERT_EPOCHS = 20
CALIBRATION_TIME_AS_ITERATIONS = 1.5
MOSAIC_MAX_IPC = 10
# settings that change how fast a run is computed, not what it computes, and bookkeeping
NOT_DEPARTURES = ("budget", "backend", "channels_last", "autocast", "tf32", "class_block", "log_every")
# the paper datasets by canonical name (data.load_dataset); others get settings by image size
SMALL_DATASETS = ("mnist", "fashion-mnist", "svhn", "cifar10", "cifar100", "tinyimagenet")


@dataclass(frozen=True)
class CondenseConfig:
    method: str = "dance"
    ipc: int = 10
    iterations: int = 10000
    lr_img: float = 0.1
    momentum: float = 0.5
    batch_real: int = 128          # real images per class per iteration
    batch_syn_max: int = 200       # DANCE: decoded synthetic images per class per step, at most
    factor: int = 2                # multi-formation factor (DANCE); 1 for DM
    init: str = "mix"              # real | first | mix | noise
    dsa_strategy: str = DANCE_STRATEGY
    dsa_convention: str = "idc"    # vico (DM) | idc (DANCE)
    iter_calib: int = 1            # DANCE calibration rounds per iteration (0 disables)
    lambda_min: float = 0.0        # middle encoder θ_mid = λ·θ_init + (1−λ)·θ_expert, λ ~ U[min, max)
    lambda_max: float = 1.0
    num_experts: int = 5           # experts used (DANCE)
    arch: str = "convnet"
    width: int = 128
    depth: int | None = None       # None: by image size (models.get_network)
    pretrain_epochs: int = 60      # DANCE experts
    pretrain_batch: int = 64
    pretrain_num: int = 20         # experts the paper pretrains (only num_experts are used; recipes)
    eval_protocol: str = "dance"   # the paper's evaluation of this method: "dm" (§1.6) | "dance" (§3.11)
    eval_epochs: int = 1500
    budget: float = 1.0            # 1: the preset as is; < 1: scaled down (module docstring)
    backend: str = "auto"          # ops: auto | extension | reference
    channels_last: bool = False    # speed path: channels_last network inputs
    autocast: str | None = None    # speed path: None | "bf16" | "fp16" for the networks (losses stay float32)
    tf32: bool = False             # speed path: TF32 matmul/convolution on CUDA
    class_block: int | None = None # classes per group of network calls (condense.class_block)
    log_every: int = 50

    def to_dict(self) -> dict:
        return asdict(self)


FIELDS = {f.name for f in fields(CondenseConfig)}


def eval_epochs(protocol: str, dataset: str | None, images_per_class: int, num_classes: int,
                budget: float = 1.0) -> int:
    """Training epochs of ``protocol`` ("dm": 1000; "dance": 1500, or IDC's ``ipc_epoch`` on
    the ImageNet subsets) for a set of ``images_per_class`` (decoded) images, × √budget."""
    epochs = protocols.protocol(protocol, dataset, images_per_class, num_classes).epochs
    return _times(epochs, math.sqrt(_check_budget(budget)))


def paper(method: str, dataset: str, ipc: int, image_size: tuple[int, int], factor: int | None = None) -> CondenseConfig:
    """The official scripts' settings for ``method`` on ``dataset`` at ``ipc``: explicit for
    MNIST, Fashion-MNIST, SVHN, CIFAR-10/100, TinyImageNet and the 128×128 ImageNet subsets;
    other datasets (digits, folders, tensors) get the same rules by image size. ``factor``
    (DANCE): None for the paper's; init and evaluation epochs follow it."""
    subset = dataset in IMAGENET_SUBSETS or min(image_size) >= 128
    # ConvNet-3 up to 64 px (DANCE keeps depth 3 on TinyImageNet, as DM's default), ConvNet-5 at 128 px
    depth = 5 if subset else 3 if dataset in SMALL_DATASETS else None
    if method == "dm":
        # DM README: lr 10 for CIFAR-10 at ipc ≥ 100, else 1; batch_real 256 for every dataset
        lr = 10.0 if dataset == "cifar10" and ipc >= 100 else 1.0
        return CondenseConfig(method="dm", ipc=ipc, iterations=20000, lr_img=lr, batch_real=256,
                              factor=1, init="real", dsa_strategy=DM_STRATEGY, dsa_convention="vico",
                              iter_calib=0, num_experts=0, depth=depth, eval_protocol="dm",
                              eval_epochs=DM_EVAL_EPOCHS)
    if method == "dance":
        # f = 2 is the papers' choice (28–128 px); a 4×4 tile of an 8×8 digit keeps too little of it
        if factor is None:
            factor = 2 if min(image_size) >= 16 else 1
        return CondenseConfig(method="dance", ipc=ipc, iterations=10000, lr_img=(0.1 if subset else 0.01) * ipc,
                              batch_real=128, factor=factor, init="mix" if factor > 1 else "real", depth=depth,
                              num_experts=5, pretrain_num=5 if subset else 20,
                              pretrain_epochs=80 if subset else 60, pretrain_batch=128 if subset else 64,
                              eval_protocol="dance",  # the subsets have 10 classes each
                              eval_epochs=eval_epochs("dance", dataset if subset else None, ipc * factor ** 2, 10))
    # random and herding: DM's evaluation (the papers take these rows from DC/DM)
    return CondenseConfig(method=method, ipc=ipc, iterations=0, factor=1, init="real", depth=depth,
                          eval_protocol="dm", eval_epochs=DM_EVAL_EPOCHS)


def quick(method: str, dataset: str, ipc: int, image_size: tuple[int, int], factor: int | None = None) -> CondenseConfig:
    """A CPU budget: the paper's algorithm and learning rates with 200 iterations, a narrower
    network, smaller real batches and fewer, shorter-trained experts (about a minute on 2
    cores for digits)."""
    base = paper(method, dataset, ipc, image_size, factor)
    num_experts = min(base.num_experts, 3)
    return replace(base, iterations=min(base.iterations, 200), width=32, batch_real=64, num_experts=num_experts,
                   pretrain_num=max(num_experts, 1), pretrain_epochs=10, eval_epochs=300, log_every=20)


def _preset(preset: str, method: str, dataset: str, ipc: int, image_size, budget) -> CondenseConfig:
    """``preset`` scaled by ``budget``, with the reduced-budget design (module docstring)."""
    make = paper if preset == "paper" else quick
    config = scale(make(method, dataset, ipc, image_size), budget)
    if method != "dance" or config.pretrain_epochs >= REDUCED_BELOW_EXPERT_EPOCHS:
        return config
    if config.factor > 1 and ipc > MOSAIC_MAX_IPC:
        config = scale(make(method, dataset, ipc, image_size, factor=1), budget)
    if not config.iter_calib:
        return config
    return replace(config, iter_calib=0, iterations=_times(config.iterations, CALIBRATION_TIME_AS_ITERATIONS))


def departures(config: CondenseConfig, dataset: str, image_size) -> dict:
    """Every setting of ``config`` that differs from the paper preset of its method, dataset
    and IPC: name -> {"paper": value, "used": value} (speed paths and bookkeeping aside)."""
    base = paper(config.method, dataset, config.ipc, tuple(image_size))
    return {f.name: {"paper": getattr(base, f.name), "used": getattr(config, f.name)} for f in fields(config)
            if f.name not in NOT_DEPARTURES and getattr(base, f.name) != getattr(config, f.name)}


def _check_budget(budget) -> float:
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not 0 < budget <= 1:
        raise ValueError(f"budget: expected a number in (0, 1] (1 = the preset as is), got {budget!r}")
    return float(budget)


def _times(value: int, factor: float) -> int:
    """``value`` × ``factor``, rounded, at least 1 (0 stays 0)."""
    return max(1, round(value * factor)) if value else 0


def scale(config: CondenseConfig, budget) -> CondenseConfig:
    """``config`` shrunk by ``budget`` in (0, 1] as the module docstring says; 1 changes nothing."""
    if _check_budget(budget) == 1:
        return replace(config, budget=1.0)
    root = math.sqrt(budget)
    times = _times
    pretrain_num = times(config.pretrain_num, budget)
    expert_epochs = min(config.pretrain_epochs, max(MIN_EXPERT_EPOCHS, times(config.pretrain_epochs, budget)))
    return replace(
        config, budget=float(budget), iterations=times(config.iterations, budget), pretrain_epochs=expert_epochs,
        pretrain_num=pretrain_num, num_experts=min(config.num_experts, pretrain_num),
        width=min(config.width, 16 * math.ceil(config.width * root / 16)),
        batch_real=max(min(32, config.batch_real), round(config.batch_real * root)),
        eval_epochs=times(config.eval_epochs, root))


def resolve(method: str, preset: str | None, dataset: str, ipc: int, image_size, overrides: dict) -> CondenseConfig:
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    preset = preset or "paper"
    if preset not in PRESETS:
        raise ValueError(f"preset: expected one of {PRESETS}, got {preset!r}")
    unknown = sorted(set(overrides) - FIELDS)
    if unknown:
        raise TypeError(f"condense() got unknown setting(s) {unknown}; valid: {sorted(FIELDS - {'method', 'ipc'})}")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    # the budget scales the preset; explicit overrides then win over the scaled values
    config = _preset(preset, method, dataset, ipc, tuple(image_size), overrides.pop("budget", 1.0))
    if method == "dance" and "factor" in overrides and "init" not in overrides:
        # init follows the factor: mosaics for f > 1, else a random real subset (the official
        # 'random' init takes the first ipc images of each class, a writer-ordered subset on digits)
        factor = overrides["factor"]
        overrides["init"] = "mix" if isinstance(factor, int) and factor > 1 else "real"
    config = replace(config, **overrides)
    validate(config)
    return config


def validate(c: CondenseConfig) -> None:
    def need(ok: bool, name: str, expected: str, value) -> None:
        if not ok:
            raise ValueError(f"{name}: expected {expected}, got {value!r}")

    def integer(v) -> bool:  # True is an int to Python, never a count here
        return isinstance(v, int) and not isinstance(v, bool)

    def number(v) -> bool:  # --set lr_img=abc arrives as a str; inf and NaN only diverge
        return integer(v) or (isinstance(v, float) and math.isfinite(v))

    need(integer(c.ipc) and c.ipc >= 1, "ipc", "a positive int", c.ipc)
    need(integer(c.iterations) and c.iterations >= 0, "iterations", "a non-negative int", c.iterations)
    need(number(c.lr_img) and c.lr_img > 0, "lr_img", "a finite number > 0", c.lr_img)
    need(number(c.momentum) and 0 <= c.momentum < 1, "momentum", "a number in [0, 1)", c.momentum)
    need(isinstance(c.batch_real, int) and c.batch_real >= 1, "batch_real", "a positive int", c.batch_real)
    need(isinstance(c.batch_syn_max, int) and c.batch_syn_max >= 1, "batch_syn_max", "a positive int", c.batch_syn_max)
    need(isinstance(c.factor, int) and c.factor >= 1, "factor", "a positive int", c.factor)
    need(c.init in ("real", "first", "mix", "noise"), "init", "one of real, first, mix, noise", c.init)
    need(c.dsa_convention in ("vico", "idc"), "dsa_convention", "'vico' or 'idc'", c.dsa_convention)
    need(isinstance(c.iter_calib, int) and c.iter_calib >= 0, "iter_calib", "a non-negative int", c.iter_calib)
    need(number(c.lambda_min) and number(c.lambda_max) and 0 <= c.lambda_min <= c.lambda_max <= 1,
         "lambda_min/lambda_max", "0 <= lambda_min <= lambda_max <= 1",
         (c.lambda_min, c.lambda_max))
    need(c.backend in ("auto", "extension", "reference"), "backend", "auto, extension or reference", c.backend)
    need(isinstance(c.channels_last, bool), "channels_last", "True or False", c.channels_last)
    need(c.autocast in (None, "bf16", "fp16"), "autocast", "None, 'bf16' or 'fp16'", c.autocast)
    need(isinstance(c.tf32, bool), "tf32", "True or False", c.tf32)
    need(c.class_block is None or (isinstance(c.class_block, int) and c.class_block >= 1), "class_block",
         "None or a positive int", c.class_block)
    need(isinstance(c.log_every, int) and c.log_every >= 1, "log_every", "a positive int", c.log_every)
    need(integer(c.pretrain_num) and c.pretrain_num >= 1, "pretrain_num", "a positive int", c.pretrain_num)
    need(c.eval_protocol in PROTOCOLS, "eval_protocol", f"one of {PROTOCOLS}", c.eval_protocol)
    need(integer(c.eval_epochs) and c.eval_epochs >= 1, "eval_epochs", "a positive int", c.eval_epochs)
    need(number(c.budget) and 0 < c.budget <= 1, "budget", "a number in (0, 1]", c.budget)
    if c.method == "dm":
        need(c.factor == 1, "factor", "1 for method='dm' (multi-formation is DANCE's)", c.factor)
        need(c.init in ("real", "first", "noise"), "init", "real, first or noise for method='dm'", c.init)
    if c.method == "dance":
        need(integer(c.num_experts) and c.num_experts >= 1, "num_experts", "an int >= 1 for method='dance'",
             c.num_experts)
        if c.factor > 1:
            need(c.init == "mix", "init", "'mix' when factor > 1 (DANCE decodes mosaics)", c.init)
