"""`dance-ext` / `python -m dance_ext`: one module per subcommand, each with ``HELP``,
``add_arguments(parser)`` and ``handle(args) -> exit status``; a new command is a new
module and one entry of ``COMMANDS``. Modules import torch and the package's heavy parts
inside ``handle`` only, so `dance-ext --help` answers without loading them."""
from __future__ import annotations

import argparse
import shlex
import sys

from ..watch import MissingExtra
from . import (
    compare,
    condense,
    config,
    cross_arch,
    evaluate,
    export,
    figures,
    info,
    pretrain,
    reproduce,
    selftest,
    sweep,
)

DESCRIPTION = """Dataset condensation by Distribution Matching (DM) and DANCE.

With no dataset, `dance-ext condense` condenses the embedded default (sklearn's digits,
offline) with the CPU-sized "quick" preset and evaluates the result."""
# name -> module, in the order `dance-ext --help` lists them
COMMANDS = {"condense": condense, "pretrain": pretrain, "evaluate": evaluate, "export": export, "compare": compare,
            "reproduce": reproduce, "sweep": sweep, "cross-arch": cross_arch, "figures": figures, "config": config, "info": info,
            "selftest": selftest}


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors ("dance-ext: error: argument --flag: ..."), exit status 2."""

    def error(self, message: str):
        self.exit(2, f"dance-ext: error: {' '.join(message.split())}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="dance-ext", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module in COMMANDS.items():
        module.add_arguments(sub.add_parser(name, help=module.HELP, description=module.HELP))
    return parser


def _apply_config(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """Make the settings of ``--config FILE`` the defaults of its command, so that flags on
    the command line (and --set) still win over them."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("command", nargs="?")
    pre.add_argument("--config")
    known, _ = pre.parse_known_args(argv)
    if known.config is None or known.command not in COMMANDS:
        return
    from .. import config as settings

    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
    command = sub.choices[known.command]
    if command.get_default("config_overrides") is None:
        return  # a command without --config: argparse names the stray flag
    values = settings.read(known.config)
    defaults, overrides = settings.split(command, values, known.config, known.command == "condense")
    command.set_defaults(**defaults, config_overrides=overrides)


def parse(argv=None, command_line: str | None = None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    """The parser and the parsed command line (``--config`` applied); ``command_line`` is what
    the recipes record as the command run (default: ``dance-ext`` and ``argv``)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    _apply_config(parser, argv)
    args = parser.parse_args(argv)
    args.command_line = command_line or shlex.join(["dance-ext", *argv])
    return parser, args


def main(argv=None, command_line: str | None = None) -> int:
    _, args = parse(argv, command_line)
    return COMMANDS[args.command].handle(args)


def run(argv=None, command_line: str | None = None) -> None:
    """Console entry: bad input ends with one line naming the flag and exit status 2, not a
    traceback. The library names its arguments ("eval_epochs: ..."); here they become the
    flags the user typed ("--eval-epochs: ...")."""
    try:
        parser, args = parse(argv, command_line)
    except (ValueError, TypeError, FileNotFoundError) as exc:  # an unreadable --config
        print(f"dance-ext: error: {' '.join(str(exc).split())}", file=sys.stderr)
        sys.exit(2)
    try:
        sys.exit(COMMANDS[args.command].handle(args))
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, ImportError, MissingExtra) as exc:
        message = " ".join(str(exc).split())  # one line, whatever the message holds
        print(f"dance-ext: error: {as_flag(message, parser, args.command)}", file=sys.stderr)
        sys.exit(2)


def as_flag(message: str, parser: argparse.ArgumentParser, command: str) -> str:
    """``message`` with a leading "<argument>:" replaced by the subcommand's flag for it."""
    name, sep, rest = message.partition(":")
    if not sep or " " in name:
        return message
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]  # noqa: SLF001
    flags = {a.dest: a.option_strings[-1] for a in sub._actions if a.option_strings}
    return f"{flags[name]}:{rest}" if name in flags else message
