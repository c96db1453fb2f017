"""`dance-ext evaluate`: train networks on a saved set, test on real data."""
from __future__ import annotations

import json

from .common import add_common, add_config

HELP = "train networks on a saved condensed set, test on real data"


def add_arguments(p) -> None:
    p.add_argument("result", help="folder written by `dance-ext condense`")
    p.add_argument("test", nargs="?", help="test dataset (default: the result's dataset)")
    p.add_argument("--arch", default="convnet")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--epochs", type=int)
    p.add_argument("--protocol", choices=["dm", "dance"])
    add_config(p)
    add_common(p)


def handle(args) -> int:
    import dance_ext

    result = dance_ext.load(args.result)
    test = dance_ext.load_dataset(args.test or result.meta["dataset"], split="test", root=args.root)
    scores = dance_ext.evaluate(result, test, arch=args.arch, runs=args.runs, epochs=args.epochs,
                                seed=args.seed, protocol=args.protocol, device=args.device,
                                progress=not args.no_progress)
    print(json.dumps(scores, indent=2))
    return 0
