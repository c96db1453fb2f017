"""Cross-architecture evaluation of saved condensed sets: train ConvNet, AlexNet, VGG11 and
ResNet18 (or any nets of dance_ext.models) on each set, test on the real test split, and
write a markdown table and JSON.

    dance-ext cross-arch runs/fm/sets/dm_ipc10 runs/fm/sets/dance_ipc10 --runs 3 --epochs 300

The nets keep their own widths; the ConvNet takes the sets' condensation width unless --width.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from ..compare import CROSS_ARCHS, cross_arch, cross_arch_table
from ..data import load_dataset
from ..files import atomic_write
from ..results import CondenseResult


def run(args) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    results = {Path(s).name: CondenseResult.load(s) for s in args.sets}
    datasets = {args.test or r.meta["dataset"] for r in results.values()}
    if len(datasets) != 1:
        raise ValueError(f"sets: expected sets of one dataset, got {sorted(datasets)}; evaluate them separately")
    test = load_dataset(datasets.pop(), split="test", root=args.root)
    if args.test_per_class:
        keep = test.first_per_class(args.test_per_class).flatten()
        test = dataclasses.replace(test, images=test.images[keep], labels=test.labels[keep])
    width = args.width or next(iter(results.values())).meta["width"]
    rows = cross_arch(results, test, args.archs or CROSS_ARCHS, runs=args.runs, epochs=args.epochs,
                      protocol=args.protocol, width=width, seed=args.seed, device=args.device)
    table = cross_arch_table(rows)
    print(table)
    if args.out:
        atomic_write(f"{args.out}.md", lambda tmp: Path(tmp).write_text(table + "\n"))
        text = json.dumps(rows, indent=2)
        atomic_write(f"{args.out}.json", lambda tmp: Path(tmp).write_text(text))
    return 0
