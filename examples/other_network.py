"""Evaluate a condensed set on networks other than the ConvNet it was condensed with.

`evaluate(..., arch=NAME)` trains fresh networks of a built-in architecture
(dance_ext.models.ARCHS: convnet variants, mlp, lenet, alexnet, vgg11, resnet18, ...)
on the set and tests them on real data.

    python examples/other_network.py --archs mlp lenet alexnet
"""
import argparse

import dance_ext
from dance_ext.models import ARCHS


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archs", nargs="+", default=["mlp", "lenet"], choices=ARCHS)
    p.add_argument("--iterations", type=int, help="condensation iterations (default: the quick preset's)")
    p.add_argument("--epochs", type=int, default=300, help="evaluation epochs")
    args = p.parse_args(argv)

    result = dance_ext.condense("digits", ipc=10, method="dm", preset="quick", iterations=args.iterations,
                                progress=False)
    for arch in args.archs:
        scores = dance_ext.evaluate(result, "digits", arch=arch, runs=1, epochs=args.epochs, progress=False)
        print(f"{scores['arch']}: {scores['mean']:.1f} % test accuracy")


if __name__ == "__main__":
    main()
