"""What the subcommands share: the embedded default dataset, the quick evaluation budget,
the ``--set KEY=VALUE`` parser, the flags every command takes and ``--config``."""
from __future__ import annotations

import argparse
import ast

DEFAULT_DATASET = "digits"
# the quick preset's evaluation budget (the protocols' own: 1000/1500 epochs, width 128)
QUICK_EVAL_EPOCHS, QUICK_EVAL_WIDTH = 300, 32


def setting(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` with VALUE a Python literal (a plain string otherwise); never runs code."""
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--set: expected KEY=VALUE, got {text!r}")
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        parsed = value
    return key.strip(), parsed


def count(minimum: int):
    """An argparse type: an int >= ``minimum``, refused at parse time (exit 2, naming the flag),
    never silently replaced by a default later."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an int, got {text!r}") from None
        if value < minimum:
            what = "a positive int" if minimum == 1 else f"an int >= {minimum}"
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value
    parse.__name__ = "int"
    return parse


def fraction(text: str) -> float:
    """An argparse type for --budget: a number in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text}")
    return value


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", help="folder holding the dataset files (for names other than digits)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 … (default: cuda if available)")
    p.add_argument("--seed", type=count(0), default=0)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE",
                   help="settings from a YAML or JSON file (keys: this command's options; for condense also "
                        "any CondenseConfig field) or a saved result's metrics.json; flags and --set win over it")
    p.set_defaults(config_overrides={})
