"""`dance-ext reproduce`: the papers' table end to end (dance_ext/recipes/reproduce.py)."""
from __future__ import annotations

from ..presets import METHODS
from ..protocols import PROTOCOLS
from .common import add_config

HELP = "reproduce a condensation table: experts, every method and IPC, evaluation, results.md, figures"


def add_arguments(p) -> None:
    p.add_argument("--dataset", default="fashion-mnist", help="dataset name (see dance_ext.load_dataset)")
    p.add_argument("--root", help="folder holding the dataset files")
    p.add_argument("--ipc", type=int, nargs="+", default=[1, 10, 50])
    p.add_argument("--methods", nargs="+", default=["random", "herding", "dm", "dance"], choices=list(METHODS))
    p.add_argument("--budget", type=float, default=1.0, help="in (0, 1]; 1 = the papers' settings")
    p.add_argument("--eval-runs", type=int, default=3, help="networks trained per condensed set")
    p.add_argument("--protocol", default="dance", choices=[*PROTOCOLS, "paper"],
                   help="evaluation of every set (paper: each method's own)")
    p.add_argument("--own-protocol", action="store_true",
                   help="also evaluate every set with its method's own paper protocol where it differs")
    p.add_argument("--eval-epochs", type=int, help="default: the protocol's epochs × √budget")
    p.add_argument("--eval-every", type=int, help="test checkpoints for best-epoch accuracy (default: protocol's)")
    p.add_argument("--curve-points", type=int, default=0,
                   help="evaluations during DM/DANCE condensation, besides the initial set (0: none)")
    p.add_argument("--curve-ipc", type=int, nargs="+", help="IPCs that get accuracy curves (default: all)")
    p.add_argument("--curve-runs", type=int, default=1, help="networks per curve point")
    p.add_argument("--cross-arch", nargs="*", metavar="ARCH",
                   help="also evaluate every final set on these nets (no names: convnet alexnet vgg11 resnet18)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", help="cpu, cuda, … (default: cuda if available)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    p.add_argument("--out", default="runs/reproduce", help="output folder")
    p.add_argument("--fresh", action="store_true",
                   help="redo the cells asked for; the others in OUT/results.json stay (default: keep every finished "
                        "cell; experts are reused either way)")
    p.add_argument("--verbose", action="store_true", help="inner progress bars too")
    add_config(p)


def handle(args) -> int:
    from ..recipes.reproduce import run

    return run(args)
