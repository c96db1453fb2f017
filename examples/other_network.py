"""Evaluate a condensed set on networks other than the ConvNet it was condensed with.

`evaluate(..., arch=...)` trains fresh networks on the set and tests them on real data.
`arch` is a built-in name (dance_ext.models.ARCHS: convnet variants, mlp, lenet, alexnet,
vgg11, resnet18, ...), "timm:<name>" when timm is installed, or your own network: a
callable (channels, num_classes, image_size) -> nn.Module, as `tiny_mlp` below.

    python examples/other_network.py --archs mlp lenet
"""
import argparse

from torch import nn

import dance_ext
from dance_ext.models import ARCHS


def tiny_mlp(channels: int, num_classes: int, image_size) -> nn.Module:
    """A network of your own: anything that maps (N, channels, H, W) to (N, num_classes) logits."""
    height, width = image_size
    return nn.Sequential(nn.Flatten(), nn.Linear(channels * height * width, 64), nn.ReLU(), nn.Linear(64, num_classes))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archs", nargs="+", default=["mlp", "lenet"], choices=ARCHS)
    p.add_argument("--iterations", type=int, help="condensation iterations (default: the quick preset's)")
    p.add_argument("--epochs", type=int, default=300, help="evaluation epochs")
    args = p.parse_args(argv)

    result = dance_ext.condense("digits", ipc=10, method="dm", preset="quick", iterations=args.iterations,
                                progress=False)
    for arch in [*args.archs, tiny_mlp]:
        scores = dance_ext.evaluate(result, "digits", arch=arch, runs=1, epochs=args.epochs, progress=False)
        print(f"{scores['arch']}: {scores['mean']:.1f} % test accuracy")


if __name__ == "__main__":
    main()
