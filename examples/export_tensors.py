"""Hand a condensed set to another tool (DD-Ranking and the like) as plain tensors.

`res.export(folder, format="tensors")` writes the decoded training set: images.pt (float
(N, C, H, W) in [0, 1]; DANCE's mosaics already decoded into factor² images each),
labels.pt (int64) and meta.json (mean, std, classes: the consumer normalises with them).
`dance_ext.load_set` reads the folder back; the formats "imagefolder", "dm" and "dance"
work the same way.

    python examples/export_tensors.py --out out/export
    python -c "import torch; print(torch.load('out/export/images.pt').shape)"
"""
import argparse

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
    folder = result.export(args.out, format="tensors")
    images, labels = dance_ext.load_set(folder).decoded()
    print(f"wrote {images.shape[0]} images {tuple(images.shape[1:])} and their labels to {folder}")


if __name__ == "__main__":
    main()
