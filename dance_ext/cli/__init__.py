"""`dance-ext` / `python -m dance_ext`: one module per subcommand, each with ``HELP``,
``add_arguments(parser)`` and ``handle(args) -> exit status``; a new command is a new
module and one entry of ``COMMANDS``."""
from __future__ import annotations

import argparse
import sys

from . import compare, condense, evaluate, export, info, pretrain

DESCRIPTION = """Dataset condensation by Distribution Matching (DM) and DANCE.

With no dataset, `dance-ext condense` condenses the embedded default (sklearn's digits,
offline) with the CPU-sized "quick" preset and evaluates the result."""
# name -> module, in the order `dance-ext --help` lists them
COMMANDS = {"condense": condense, "pretrain": pretrain, "evaluate": evaluate, "export": export, "compare": compare,
            "info": info}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dance-ext", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module in COMMANDS.items():
        module.add_arguments(sub.add_parser(name, help=module.HELP))
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command].handle(args)


def run() -> None:
    """Console entry: bad input ends with its message and exit code 2, not a traceback."""
    try:
        sys.exit(main())
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, ImportError) as exc:
        message = " ".join(str(exc).split())  # one line, whatever the message holds
        print(f"dance-ext: error: {message}", file=sys.stderr)
        sys.exit(2)
