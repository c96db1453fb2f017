"""`dance-ext sweep`: accuracy against budget, in resumable pieces (dance_ext/recipes/sweep.py)."""
from __future__ import annotations

from ..presets import METHODS
from ..protocols import PROTOCOLS
from .common import add_config, count, fraction

HELP = "accuracy against budget: reproduce at several budgets and seeds, one table and figure (resumable)"


def add_arguments(p) -> None:
    p.add_argument("--dataset", default="fashion-mnist", help="dataset name (see dance_ext.load_dataset)")
    p.add_argument("--root", help="folder holding the dataset files")
    p.add_argument("--ipc", type=count(1), nargs="+", default=[1, 10])
    p.add_argument("--methods", nargs="+", default=["random", "dm", "dance"], choices=list(METHODS))
    p.add_argument("--budgets", type=fraction, nargs="+", required=True, help="each in (0, 1]")
    p.add_argument("--seeds", type=count(0), nargs="+", default=[0, 1], help="one condensed set per seed and cell")
    p.add_argument("--eval-runs", type=count(1), default=3, help="networks trained per condensed set")
    p.add_argument("--protocol", default="dance", choices=list(PROTOCOLS),
                   help="the common evaluation (every set is also evaluated with its method's own)")
    p.add_argument("--eval-epochs", type=count(1), help="default: each protocol's epochs × √budget")
    p.add_argument("--device", help="cpu, cuda, … (default: cuda if available)")
    p.add_argument("--threads", type=count(1), help="torch CPU threads (default: torch's)")
    p.add_argument("--out", default="runs/sweep", help="output folder (one sub-folder per budget and seed)")
    p.add_argument("--fresh", action="store_true", help="redo the cells asked for (default: keep finished ones)")
    p.add_argument("--verbose", action="store_true", help="inner progress bars too")
    add_config(p)


def handle(args) -> int:
    from ..recipes.sweep import run

    return run(args)
