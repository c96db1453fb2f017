"""`dance-ext compare`: methods side by side over seeds, as a table."""
from __future__ import annotations

import json
from pathlib import Path

from ..presets import METHODS, PRESETS
from ..protocols import PROTOCOLS
from .common import (
    DEFAULT_DATASET,
    QUICK_EVAL_EPOCHS,
    QUICK_EVAL_WIDTH,
    add_common,
    add_config,
    count,
    fraction,
)

HELP = "random vs DM vs DANCE over seeds: a table of accuracies"


def add_arguments(p) -> None:
    p.add_argument("dataset", nargs="?", default=DEFAULT_DATASET)
    p.add_argument("--methods", nargs="+", default=["random", "dm", "dance"], choices=list(METHODS))
    p.add_argument("--ipc", type=count(1), nargs="+", default=[1, 10])
    p.add_argument("--seeds", type=count(1), default=3, help="number of seeds (0 … n−1)")
    p.add_argument("--budget", type=fraction, help="in (0, 1]: scale the preset down (default 1)")
    p.add_argument("--preset", choices=list(PRESETS), default="quick")
    p.add_argument("--eval-epochs", type=count(1), default=QUICK_EVAL_EPOCHS)
    p.add_argument("--eval-width", type=count(1), default=QUICK_EVAL_WIDTH, help="evaluation ConvNet width")
    p.add_argument("--protocol", choices=list(PROTOCOLS), default="dance")
    p.add_argument("--json", help="also write the rows to this JSON file")
    add_config(p)
    add_common(p)


def handle(args) -> int:
    from ..compare import compare, markdown_table
    from ..files import atomic_write

    rows = compare(args.dataset, args.dataset, methods=args.methods, ipcs=args.ipc,
                   seeds=range(args.seeds), preset=args.preset, protocol=args.protocol,
                   eval_epochs=args.eval_epochs, eval_width=args.eval_width, device=args.device,
                   progress=not args.no_progress, root=args.root, budget=args.budget)
    print(markdown_table(rows))
    if args.json:
        text = json.dumps(rows, indent=2)
        atomic_write(Path(args.json), lambda tmp: Path(tmp).write_text(text))
    return 0
