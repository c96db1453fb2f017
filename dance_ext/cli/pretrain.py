"""`dance-ext pretrain`: DANCE's experts into a store."""
from __future__ import annotations

from .common import DEFAULT_DATASET, add_common, add_config, count

HELP = "pretrain DANCE experts"


def add_arguments(p) -> None:
    p.add_argument("dataset", nargs="?", default=DEFAULT_DATASET)
    p.add_argument("--num", type=count(1), default=5)
    p.add_argument("--epochs", type=count(1), default=60)
    p.add_argument("--width", type=count(1), default=128)
    p.add_argument("--out", default="experts")
    p.add_argument("--overwrite", action="store_true")
    add_config(p)
    add_common(p)


def handle(args) -> int:
    import dance_ext

    train = dance_ext.as_class_data(args.dataset, split="train", root=args.root)
    test = dance_ext.as_class_data(args.dataset, split="test", root=args.root)
    pool = dance_ext.pretrain_experts(train, num=args.num, epochs=args.epochs, out=args.out, test=test,
                                      width=args.width, seed=args.seed, device=args.device,
                                      progress=not args.no_progress, overwrite=args.overwrite)
    print(f"wrote {pool.num_experts} experts to {args.out}")
    return 0
