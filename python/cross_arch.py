"""Cross-architecture evaluation of saved condensed sets: train ConvNet, AlexNet, VGG11 and
ResNet18 (or any nets of dance_ext.models) on each set, test on the real test split, and
write a markdown table and JSON.

    python python/cross_arch.py runs/fm/sets/dm_ipc10 runs/fm/sets/dance_ipc10 --runs 3 --epochs 300

The nets keep their own widths; the ConvNet takes the sets' condensation width unless --width.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import torch

import dance_ext
from dance_ext.files import atomic_write
from dance_ext.compare import CROSS_ARCHS, cross_arch, cross_arch_table


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sets", nargs="+", help="folders written by CondenseResult.save (syn.pt)")
    p.add_argument("--archs", nargs="+", default=list(CROSS_ARCHS))
    p.add_argument("--test", help="test dataset (default: each set's own)")
    p.add_argument("--root", help="folder holding the dataset files")
    p.add_argument("--test-per-class", type=int,
                   help="test on the first N test images of each class (a cheaper estimate on CPU; default: all)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--epochs", type=int, help="default: the protocol's")
    p.add_argument("--protocol", choices=["dm", "dance"], default="dance")
    p.add_argument("--width", type=int, help="ConvNet width (default: the set's condensation width)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device")
    p.add_argument("--threads", type=int)
    p.add_argument("--out", help="write <out>.md and <out>.json")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    results = {Path(s).name: dance_ext.load(s) for s in args.sets}
    datasets = {args.test or r.meta["dataset"] for r in results.values()}
    if len(datasets) != 1:
        raise SystemExit(f"sets: expected sets of one dataset, got {sorted(datasets)}; evaluate them separately")
    test = dance_ext.load_dataset(datasets.pop(), split="test", root=args.root)
    if args.test_per_class:
        keep = test.first_per_class(args.test_per_class).flatten()
        test = dataclasses.replace(test, images=test.images[keep], labels=test.labels[keep])
    width = args.width or next(iter(results.values())).meta["width"]
    rows = cross_arch(results, test, args.archs, runs=args.runs, epochs=args.epochs, protocol=args.protocol,
                      width=width, seed=args.seed, device=args.device)
    table = cross_arch_table(rows)
    print(table)
    if args.out:
        atomic_write(f"{args.out}.md", lambda tmp: Path(tmp).write_text(table + "\n"))
        text = json.dumps(rows, indent=2)
        atomic_write(f"{args.out}.json", lambda tmp: Path(tmp).write_text(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
