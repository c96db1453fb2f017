"""`dance-ext cross-arch`: saved sets on other architectures (dance_ext/recipes/cross_arch.py)."""
from __future__ import annotations

from ..protocols import PROTOCOLS
from .common import add_config

HELP = "evaluate saved condensed sets on ConvNet, AlexNet, VGG11, ResNet18 (or other nets): a table"


def add_arguments(p) -> None:
    p.add_argument("sets", nargs="+", help="folders written by CondenseResult.save (syn.pt)")
    p.add_argument("--archs", nargs="+", help="architectures (default: convnet alexnet vgg11 resnet18)")
    p.add_argument("--test", help="test dataset (default: each set's own)")
    p.add_argument("--root", help="folder holding the dataset files")
    p.add_argument("--test-per-class", type=int,
                   help="test on the first N test images of each class (a cheaper estimate on CPU; default: all)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--epochs", type=int, help="default: the protocol's")
    p.add_argument("--protocol", choices=list(PROTOCOLS), default="dance")
    p.add_argument("--width", type=int, help="ConvNet width (default: the set's condensation width)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device")
    p.add_argument("--threads", type=int)
    p.add_argument("--out", help="write <out>.md and <out>.json")
    add_config(p)


def handle(args) -> int:
    from ..recipes.cross_arch import run

    return run(args)
