"""Hand a condensed set to another tool as plain tensors.

The set is saved (syn.pt keeps the stored images, labels and every setting), loaded back
with dance_ext.load, and its training images written with torch.save: DANCE stores
mosaics that decode to factor² images each, so `decoded()` gives what a network trains on.

    python examples/export_tensors.py --out out/export
    python -c "import torch; d = torch.load('out/export/train_set.pt'); print(d['images'].shape)"
"""
import argparse
from pathlib import Path

import torch

import dance_ext


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="digits")
    p.add_argument("--method", default="dm", choices=["random", "herding", "dm", "dance"])
    p.add_argument("--ipc", type=int, default=10)
    p.add_argument("--iterations", type=int, help="default: the quick preset's 200")
    p.add_argument("--out", default="out/export")
    args = p.parse_args(argv)

    result = dance_ext.condense(args.dataset, ipc=args.ipc, method=args.method, preset="quick",
                                iterations=args.iterations, progress=False)
    saved = dance_ext.load(result.save(Path(args.out) / "set"))
    images, labels = saved.decoded()  # (N, C, H, W) float in [0, 1], int64 class labels
    meta = saved.meta
    payload = {"images": images, "labels": labels, "mean": meta["mean"], "std": meta["std"],
               "num_classes": meta["num_classes"]}
    torch.save(payload, Path(args.out) / "train_set.pt")  # plain tensors and lists: torch.load(weights_only=True)
    print(f"wrote {images.shape[0]} images {tuple(images.shape[1:])} to {Path(args.out) / 'train_set.pt'}")


if __name__ == "__main__":
    main()
