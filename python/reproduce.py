"""`dance-ext reproduce` under its old path (the recipe: dance_ext/recipes/reproduce.py).

    python python/reproduce.py --dataset fashion-mnist --ipc 1 10 --budget 0.03 --out runs/fm
"""
import shlex
import sys

from dance_ext.cli import main as cli_main, run as cli_run


def _command(argv: list) -> tuple[list, str]:
    """The subcommand's argv, and the command line the report records."""
    return ["reproduce", *argv], shlex.join(["python", "python/reproduce.py", *argv])


def main(argv=None) -> int:
    return cli_main(*_command(sys.argv[1:] if argv is None else list(argv)))


if __name__ == "__main__":
    cli_run(*_command(sys.argv[1:]))
