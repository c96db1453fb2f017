"""Networks users already have, for evaluation: besides the built-in names (``ARCHS``), a
callable ``(channels, num_classes, image_size) -> nn.Module`` or a timm model name
"timm:<name>" (timm is optional: ``pip install timm``, or the ``timm`` extra)."""
from __future__ import annotations

import importlib
from typing import Callable

from torch import nn

from ..checks import hw, positive_int
from .spec import build_network, network_spec

TIMM_PREFIX = "timm:"


def arch_label(arch) -> str:
    """A name for tables and JSON: the string itself, or the callable's name."""
    return arch if isinstance(arch, str) else getattr(arch, "__name__", type(arch).__name__)


def _timm(arch: str):
    try:
        return importlib.import_module("timm")
    except ImportError:
        raise ImportError(f"arch: {arch!r} needs timm, which is not installed; pip install timm (or the "
                          "dance_ext[timm] extra), or pass a built-in name or a callable") from None


def network_builder(arch, channels: int, num_classes: int, image_size, width: int | None = 128,
                    depth: int | None = None) -> tuple[Callable[[], nn.Module], dict]:
    """(a builder of fresh networks, a JSON-able description) for a built-in name, a
    "timm:<name>" or a callable; width/depth apply to the ConvNet family only."""
    if isinstance(arch, str) and not arch.lower().startswith(TIMM_PREFIX):
        spec = network_spec(arch, channels, num_classes, image_size, width, depth)
        return (lambda: build_network(spec)), spec
    if not isinstance(arch, str) and not callable(arch):
        raise TypeError(f"arch: expected a network name, 'timm:<name>' or a callable (channels, num_classes, "
                        f"image_size) -> nn.Module, got {type(arch).__name__}")
    if width not in (None, 128) or depth is not None:
        raise ValueError(f"width/depth: only the ConvNet family takes them; arch {arch_label(arch)!r} got "
                         f"width={width!r}, depth={depth!r}")
    channels, num_classes = positive_int("channels", channels), positive_int("num_classes", num_classes)
    size = hw(image_size)
    described = {"arch": arch_label(arch), "channels": channels, "num_classes": num_classes, "image_size": list(size)}
    if isinstance(arch, str):
        timm, name = _timm(arch), arch[len(TIMM_PREFIX):]
        if not timm.is_model(name):
            raise ValueError(f"arch: timm has no model {name!r}")
        return (lambda: timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=channels)), \
            described

    def build() -> nn.Module:
        model = arch(channels, num_classes, size)
        if not isinstance(model, nn.Module):
            raise TypeError(f"arch: {arch_label(arch)}(channels, num_classes, image_size) returned a "
                            f"{type(model).__name__}, expected an nn.Module")
        return model
    return build, described
