"""Progress bars for condensation, pretraining and the recipes, in one place: tqdm's bar on a
terminal or in a notebook; where stderr is a file or a pipe (batch jobs, CI logs) plain
lines instead, one every ``DANCE_EXT_PROGRESS_SECONDS`` seconds (default 30), since a
redrawn bar there is one endless line of carriage returns."""
from __future__ import annotations

import os
import re
import sys

import tqdm as _tqdm
from tqdm.auto import tqdm as _interactive_bar

DEFAULT_SECONDS = 30.0
_REDRAW = re.compile(r"[\r\n]")
_CURSOR_UP = "\x1b[A"  # tqdm moves up to redraw nested bars


class _Lines:
    """A stream for tqdm that writes each redraw of a bar as one plain line."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> None:
        for part in _REDRAW.split(text.replace(_CURSOR_UP, "")):
            if part.strip():  # tqdm clears with blanks
                self.stream.write(part.rstrip() + "\n")

    def flush(self) -> None:
        self.stream.flush()


class _LineBar(_tqdm.tqdm):
    """Lines by time only: a new postfix (the losses) shows in the next line instead of
    forcing one, which would print a line per call."""

    def set_postfix(self, ordered_dict=None, refresh=True, **kwargs):
        super().set_postfix(ordered_dict, refresh=False, **kwargs)


def _interactive(stream) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) or "ipykernel" in sys.modules


def progress_bar(iterable=None, **kwargs):
    """``tqdm(iterable, **kwargs)``, as plain periodic lines when stderr is no terminal."""
    stream = sys.stderr
    if kwargs.get("disable") or _interactive(stream):
        return _interactive_bar(iterable, **kwargs)
    seconds = float(os.environ.get("DANCE_EXT_PROGRESS_SECONDS", DEFAULT_SECONDS))
    lines = {"file": _Lines(stream), "mininterval": seconds, "maxinterval": max(seconds, 10.0), "ascii": True}
    return _LineBar(iterable, **{**kwargs, **lines})


def write(message: str) -> None:
    """A message between bars (tqdm.write keeps a terminal's bars intact)."""
    _tqdm.tqdm.write(message, file=sys.stderr)
