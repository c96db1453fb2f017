"""The evaluation protocols of the papers (docs/ALGORITHMS.md §1.6 DM, §3.11 DANCE): the
one table that presets (a method's evaluation epochs) and evaluate (the training) read.

* ``"dm"`` (VICO-UoE ``evaluate_synset``): SGD lr 0.01, momentum 0.9, wd 5e-4, batch 256,
  E = 1000 (the official loop runs E + 1 epochs); after epoch index E//2 + 1 the lr drops
  ×0.1 with a fresh optimizer. DSA ``DM_STRATEGY`` (VICO convention), no CutMix; the
  test accuracy after the last epoch.
* ``"dance"`` (DANCE/IDC ``train``): SGD 0.01/0.9/5e-4, batch 64, E = 1500 (ImageNet
  subsets: IDC's ``ipc_epoch``), MultiStepLR [2E//3, 5E//6] γ 0.2, DSA
  ``DANCE_EVAL_STRATEGY`` (IDC convention; without ``flip`` where classes are not mirror
  symmetric), CutMix p 0.5; test checkpoints every 250 epochs (500 on the subsets).
"""
from __future__ import annotations

from dataclasses import dataclass

from .strategies import DANCE_EVAL_STRATEGY, DM_STRATEGY, parse_strategy

PROTOCOLS = ("dm", "dance")
DM_EVAL_EPOCHS = 1000
DANCE_EVAL_EPOCHS = 1500
# the six 128 px ImageNet subsets of DANCE Table 2 (MTT's class lists)
IMAGENET_SUBSETS = ("imagenette", "imagewoof", "imagefruit", "imagemeow", "imagesquawk", "imageyellow")
# datasets whose DANCE evaluation epochs follow IDC's ipc_epoch
IPC_EPOCH_DATASETS = IMAGENET_SUBSETS + ("imagenet",)
# datasets whose classes change under a horizontal flip: DANCE drops "flip" for them
NO_FLIP_DATASETS = ("mnist", "svhn", "digits")


@dataclass(frozen=True)
class Protocol:
    name: str
    lr: float
    momentum: float
    weight_decay: float
    batch_size: int
    epochs: int
    strategy: str
    convention: str
    cutmix_p: float
    eval_every: int | None  # test checkpoints (best-epoch accuracy); None: the last epoch only

    @property
    def epochs_run(self) -> int:
        """DM's official loop runs epochs 0 … E."""
        return self.epochs + 1 if self.name == "dm" else self.epochs

    @property
    def milestones(self) -> list[int]:
        return [2 * self.epochs // 3, 5 * self.epochs // 6]


def dance_epochs(dataset: str | None, images_per_class: int, num_classes: int) -> int:
    """DANCE's evaluation epochs: 1500, or IDC's ``ipc_epoch`` for the ImageNet subsets
    (``images_per_class`` = ipc·f², the decoded images per class)."""
    if (dataset or "").lower() not in IPC_EPOCH_DATASETS:
        return DANCE_EVAL_EPOCHS
    n = images_per_class
    epochs = 3000 if n == 1 else 2000 if n <= 10 else 1500 if n <= 50 else 1000 if n <= 200 else \
        500 if n <= 500 else 300
    if num_classes == 100:
        epochs = int(2 / 3 * epochs)
        epochs -= epochs % 100
    return epochs


def protocol(name: str, dataset: str | None, images_per_class: int, num_classes: int) -> Protocol:
    """The paper's protocol ``name`` for a set of ``images_per_class`` (decoded) images."""
    if name not in PROTOCOLS:
        raise ValueError(f"protocol: expected one of {PROTOCOLS}, got {name!r}")
    dataset = (dataset or "").lower()
    if name == "dm":
        return Protocol("dm", 0.01, 0.9, 5e-4, 256, DM_EVAL_EPOCHS, DM_STRATEGY, "vico", 0.0, None)
    strategy = DANCE_EVAL_STRATEGY
    if dataset in NO_FLIP_DATASETS:
        strategy = "_".join(t for t in parse_strategy(strategy) if t != "flip")
    return Protocol("dance", 0.01, 0.9, 5e-4, 64, dance_epochs(dataset, images_per_class, num_classes),
                    strategy, "idc", 0.5, 500 if dataset in IPC_EPOCH_DATASETS else 250)
