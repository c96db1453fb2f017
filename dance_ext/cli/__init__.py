"""`dance-ext` / `python -m dance_ext`: one module per subcommand, each with ``HELP``,
``add_arguments(parser)`` and ``handle(args) -> exit status``; a new command is a new
module and one entry of ``COMMANDS``. Modules import torch and the package's heavy parts
inside ``handle`` only, so `dance-ext --help` answers without loading them."""
from __future__ import annotations

import argparse
import shlex
import sys

from ..watch import MissingExtra
from . import compare, condense, config, cross_arch, evaluate, figures, info, pretrain, reproduce

DESCRIPTION = """Dataset condensation by Distribution Matching (DM) and DANCE.

With no dataset, `dance-ext condense` condenses the embedded default (sklearn's digits,
offline) with the CPU-sized "quick" preset and evaluates the result."""
# name -> module, in the order `dance-ext --help` lists them
COMMANDS = {"condense": condense, "pretrain": pretrain, "evaluate": evaluate, "compare": compare,
            "reproduce": reproduce, "cross-arch": cross_arch, "figures": figures, "config": config, "info": info}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dance-ext", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
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


def main(argv=None, command_line: str | None = None) -> int:
    """Run a subcommand; ``command_line`` is what the recipes record as the command run
    (default: ``dance-ext`` and ``argv``)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    _apply_config(parser, argv)
    args = parser.parse_args(argv)
    args.command_line = command_line or shlex.join(["dance-ext", *argv])
    return COMMANDS[args.command].handle(args)


def run(argv=None, command_line: str | None = None) -> None:
    """Console entry: bad input ends with its message and exit code 2, not a traceback."""
    try:
        sys.exit(main(argv, command_line))
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, MissingExtra) as exc:
        message = " ".join(str(exc).split())  # one line, whatever the message holds
        print(f"dance-ext: error: {message}", file=sys.stderr)
        sys.exit(2)
