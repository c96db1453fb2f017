"""`dance-ext` / `python -m dance_ext`: one module per subcommand, each with ``HELP``,
``add_arguments(parser)`` and ``handle(args) -> exit status``; a new command is a new
module and one entry of ``COMMANDS``."""
from __future__ import annotations

import argparse
import sys

from . import compare, condense, evaluate, export, info, pretrain, selftest

DESCRIPTION = """Dataset condensation by Distribution Matching (DM) and DANCE.

With no dataset, `dance-ext condense` condenses the embedded default (sklearn's digits,
offline) with the CPU-sized "quick" preset and evaluates the result."""
# name -> module, in the order `dance-ext --help` lists them
COMMANDS = {"condense": condense, "pretrain": pretrain, "evaluate": evaluate, "export": export, "compare": compare,
            "info": info, "selftest": selftest}


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors ("dance-ext: error: argument --flag: ..."), exit status 2."""

    def error(self, message: str):
        self.exit(2, f"dance-ext: error: {' '.join(message.split())}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="dance-ext", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module in COMMANDS.items():
        module.add_arguments(sub.add_parser(name, help=module.HELP))
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command].handle(args)


def run(argv=None) -> None:
    """Console entry: bad input ends with one line naming the flag and exit status 2, not a
    traceback. The library names its arguments ("eval_epochs: ..."); here they become the
    flags the user typed ("--eval-epochs: ...")."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        sys.exit(COMMANDS[args.command].handle(args))
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, ImportError) as exc:
        message = " ".join(str(exc).split())  # one line, whatever the message holds
        print(f"dance-ext: error: {as_flag(message, parser, args.command)}", file=sys.stderr)
        sys.exit(2)


def as_flag(message: str, parser: argparse.ArgumentParser, command: str) -> str:
    """``message`` with a leading "<argument>:" replaced by the subcommand's flag for it."""
    name, sep, rest = message.partition(":")
    if not sep or " " in name:
        return message
    sub = next(a for a in parser._subparsers._group_actions if a.dest == "command").choices[command]
    flags = {a.dest: a.option_strings[-1] for a in sub._actions if a.option_strings}
    return f"{flags[name]}:{rest}" if name in flags else message
