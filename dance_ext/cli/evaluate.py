"""`dance-ext evaluate`: train networks on a saved set, test on real data."""
from __future__ import annotations

import json

from ..formats import READABLE
from ..protocols import PROTOCOLS
from .common import add_common, add_config, count

HELP = "train networks on a condensed set (any format load_set reads), test on real data"


def add_arguments(p) -> None:
    p.add_argument("result", help="folder written by `dance-ext condense`, or a set in a format of --format")
    p.add_argument("test", nargs="?", help="test dataset: a name or folder (default: the set's dataset)")
    p.add_argument("--format", choices=list(READABLE), help="the set's format when it cannot be inferred")
    p.add_argument("--arch", default="convnet", help="a built-in network or timm:<name>")
    p.add_argument("--runs", type=count(1), default=3)
    p.add_argument("--epochs", type=count(1))
    p.add_argument("--protocol", choices=list(PROTOCOLS))
    add_config(p)
    add_common(p)


def handle(args) -> int:
    import dance_ext

    result = dance_ext.load_set(args.result, format=args.format)
    test = args.test or result.meta.get("dataset")
    if test is None:
        raise ValueError(f"test: {args.result} does not name its dataset; pass the test dataset (a name or folder)")
    test = dance_ext.as_class_data(test, split="test", root=args.root)
    scores = dance_ext.evaluate(result, test, arch=args.arch, runs=args.runs, epochs=args.epochs,
                                seed=args.seed, protocol=args.protocol, device=args.device,
                                progress=not args.no_progress)
    print(json.dumps(scores, indent=2))
    return 0
