"""`dance-ext config`: the fully resolved settings of a condense run, as YAML that
`dance-ext condense --config FILE` runs as given."""
from __future__ import annotations

from ..presets import METHODS, PRESETS
from .common import setting

HELP = "print the resolved settings of a condense run as YAML (a config for --config)"


def add_arguments(p) -> None:
    p.add_argument("dataset", help="dataset name or folder")
    p.add_argument("--method", default="dance", choices=list(METHODS))
    p.add_argument("--ipc", type=int, default=10)
    p.add_argument("--preset", choices=list(PRESETS), default="paper")
    p.add_argument("--budget", type=float, help="in (0, 1]: scale the preset down (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--root", help="folder holding the dataset files (only read for datasets of unknown size)")
    p.add_argument("--set", type=setting, action="append", default=[], metavar="KEY=VALUE",
                   help="override any CondenseConfig field")


def handle(args) -> int:
    from ..config import resolved, to_yaml

    settings = resolved(args.dataset, args.method, args.ipc, args.preset, args.seed, args.root,
                        {"budget": args.budget, **dict(args.set)})
    print(to_yaml(settings), end="")
    return 0
