"""Settings of a condensation run: the papers' per-(dataset, ipc, method) values
(ALGORITHMS.md §1.5, §3.8) and a CPU-sized "quick" preset."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from .augment import DANCE_STRATEGY, DM_STRATEGY

METHODS = ("random", "dm", "dance")
PRESETS = ("paper", "quick")


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
    backend: str = "auto"          # ops: auto | extension | reference
    channels_last: bool = False    # speed path: channels_last network inputs
    autocast: str | None = None    # speed path: None | "bf16" | "fp16" for the networks (losses stay float32)
    tf32: bool = False             # speed path: TF32 matmul/convolution on CUDA
    log_every: int = 50

    def to_dict(self) -> dict:
        return asdict(self)


FIELDS = {f.name for f in fields(CondenseConfig)}


def paper(method: str, dataset: str, ipc: int, image_size: tuple[int, int]) -> CondenseConfig:
    """The official scripts' settings for ``method`` on ``dataset`` at ``ipc``."""
    large = min(image_size) >= 128  # the 128×128 ImageNet subsets
    if method == "dm":
        # DM README: lr 10 for CIFAR-10 at ipc ≥ 100, else 1; batch_real 256 for every dataset
        lr = 10.0 if dataset == "cifar10" and ipc >= 100 else 1.0
        return CondenseConfig(method="dm", ipc=ipc, iterations=20000, lr_img=lr, batch_real=256,
                              factor=1, init="real", dsa_strategy=DM_STRATEGY, dsa_convention="vico",
                              iter_calib=0, num_experts=0)
    if method == "dance":
        # f = 2 is the papers' choice (28–128 px); a 4×4 tile of an 8×8 digit keeps too little of it
        factor = 2 if min(image_size) >= 16 else 1
        return CondenseConfig(method="dance", ipc=ipc, iterations=10000, lr_img=(0.1 if large else 0.01) * ipc,
                              batch_real=128, factor=factor, init="mix" if factor > 1 else "real",
                              pretrain_epochs=80 if large else 60, pretrain_batch=128 if large else 64)
    return CondenseConfig(method="random", ipc=ipc, iterations=0, factor=1, init="real")


def quick(method: str, dataset: str, ipc: int, image_size: tuple[int, int]) -> CondenseConfig:
    """A CPU budget: the paper's algorithm and learning rates with 200 iterations, a narrower
    network, smaller real batches and fewer, shorter-trained experts (about a minute on 2
    cores for digits)."""
    base = paper(method, dataset, ipc, image_size)
    return replace(base, iterations=min(base.iterations, 200), width=32, batch_real=64,
                   num_experts=min(base.num_experts, 3), pretrain_epochs=10, log_every=20)


def resolve(method: str, preset: str | None, dataset: str, ipc: int, image_size, overrides: dict) -> CondenseConfig:
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    preset = preset or "paper"
    if preset not in PRESETS:
        raise ValueError(f"preset: expected one of {PRESETS}, got {preset!r}")
    unknown = sorted(set(overrides) - FIELDS)
    if unknown:
        raise TypeError(f"condense() got unknown setting(s) {unknown}; valid: {sorted(FIELDS - {'method', 'ipc'})}")
    config = (paper if preset == "paper" else quick)(method, dataset, ipc, tuple(image_size))
    overrides = {k: v for k, v in overrides.items() if v is not None}
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

    need(isinstance(c.ipc, int) and c.ipc >= 1, "ipc", "a positive int", c.ipc)
    need(isinstance(c.iterations, int) and c.iterations >= 0, "iterations", "a non-negative int", c.iterations)
    need(c.lr_img > 0, "lr_img", "> 0", c.lr_img)
    need(0 <= c.momentum < 1, "momentum", "in [0, 1)", c.momentum)
    need(isinstance(c.batch_real, int) and c.batch_real >= 1, "batch_real", "a positive int", c.batch_real)
    need(isinstance(c.batch_syn_max, int) and c.batch_syn_max >= 1, "batch_syn_max", "a positive int", c.batch_syn_max)
    need(isinstance(c.factor, int) and c.factor >= 1, "factor", "a positive int", c.factor)
    need(c.init in ("real", "first", "mix", "noise"), "init", "one of real, first, mix, noise", c.init)
    need(c.dsa_convention in ("vico", "idc"), "dsa_convention", "'vico' or 'idc'", c.dsa_convention)
    need(isinstance(c.iter_calib, int) and c.iter_calib >= 0, "iter_calib", "a non-negative int", c.iter_calib)
    need(0 <= c.lambda_min <= c.lambda_max <= 1, "lambda_min/lambda_max", "0 <= lambda_min <= lambda_max <= 1",
         (c.lambda_min, c.lambda_max))
    need(c.backend in ("auto", "extension", "reference"), "backend", "auto, extension or reference", c.backend)
    need(isinstance(c.channels_last, bool), "channels_last", "True or False", c.channels_last)
    need(c.autocast in (None, "bf16", "fp16"), "autocast", "None, 'bf16' or 'fp16'", c.autocast)
    need(isinstance(c.tf32, bool), "tf32", "True or False", c.tf32)
    need(isinstance(c.log_every, int) and c.log_every >= 1, "log_every", "a positive int", c.log_every)
    if c.method == "dm":
        need(c.factor == 1, "factor", "1 for method='dm' (multi-formation is DANCE's)", c.factor)
        need(c.init in ("real", "first", "noise"), "init", "real, first or noise for method='dm'", c.init)
    if c.method == "dance":
        need(c.num_experts >= 1, "num_experts", ">= 1 for method='dance'", c.num_experts)
        if c.factor > 1:
            need(c.init == "mix", "init", "'mix' when factor > 1 (DANCE decodes mosaics)", c.init)
