"""`dance-ext cross-arch` under its old path (the recipe: dance_ext/recipes/cross_arch.py).

    python python/cross_arch.py runs/fm/sets/dm_ipc10 runs/fm/sets/dance_ipc10 --runs 3 --epochs 300
"""
import sys

from dance_ext.cli import main as cli_main, run as cli_run


def main(argv=None) -> int:
    return cli_main(["cross-arch", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    cli_run(["cross-arch", *sys.argv[1:]])
