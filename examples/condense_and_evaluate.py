"""Condense a dataset, evaluate the condensed set, save it, and load it back.

    python examples/condense_and_evaluate.py                     # DANCE on digits, ~1-2 min on 2 cores
    python examples/condense_and_evaluate.py --iterations 4 --epochs 2 --width 8
"""
import argparse

import dance_ext


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="digits")
    p.add_argument("--method", default="dance", choices=["random", "herding", "dm", "dance"])
    p.add_argument("--ipc", type=int, default=10)
    p.add_argument("--iterations", type=int, help="default: the quick preset's 200")
    p.add_argument("--width", type=int, help="network width (default: the quick preset's 32)")
    p.add_argument("--epochs", type=int, default=300, help="evaluation epochs")
    p.add_argument("--out", default="out/example")
    args = p.parse_args(argv)

    def watch(row):  # every log_every iterations: losses averaged since the last call
        print(f"iteration {row['iteration']}: inner loss {row['inner_loss']:.4f}")

    result = dance_ext.condense(args.dataset, ipc=args.ipc, method=args.method, preset="quick",
                                iterations=args.iterations, width=args.width, callback=watch, progress=False)
    scores = dance_ext.evaluate(result, args.dataset, runs=2, epochs=args.epochs, width=result.meta["width"],
                                progress=False)
    print(f"test accuracy: {scores['mean']:.1f} ± {scores['std']:.1f} % over {len(scores['runs'])} networks")
    result.evaluation = scores
    folder = result.save(args.out)  # syn.pt, grid.png, metrics.json
    again = dance_ext.load(folder)
    print(f"saved {tuple(again.images.shape)} images to {folder}; rerun with: "
          f"dance-ext condense --config {folder}/metrics.json")


if __name__ == "__main__":
    main()
