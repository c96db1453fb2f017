"""Flat-parameter helpers: fresh default-initialised networks as one tensor (DM) and middle-encoder
interpolation (DANCE)."""
from __future__ import annotations

import math

import torch
from torch import nn


def flatten_parameters_(model: nn.Module) -> torch.Tensor:
    """Move all parameters into one contiguous 1-D tensor (``model.parameters()`` order), make each
    parameter's ``.data`` a view into it, freeze them (requires_grad False) and return it.

    Writing the flat tensor changes the model. Anything that re-allocates parameters afterwards
    (``model.to(other device/dtype)``, assigning new Parameters) breaks the views; ``load_state_dict``
    copies in place and keeps them.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
    params = list(model.parameters())
    if not params:
        raise ValueError("model: has no parameters to flatten")
    dtypes = {p.dtype for p in params}
    devices = {p.device for p in params}
    if len(dtypes) != 1 or len(devices) != 1:
        raise ValueError(f"model: all parameters must share one dtype and device to be flattened, got "
                         f"dtypes {sorted(map(str, dtypes))} on devices {sorted(map(str, devices))}")
    flat = torch.cat([p.detach().reshape(-1) for p in params])
    offset = 0
    for p in params:
        n = p.numel()
        p.data = flat[offset:offset + n].view_as(p)
        p.requires_grad_(False)
        offset += n
    return flat


_NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.InstanceNorm1d,
               nn.InstanceNorm2d, nn.InstanceNorm3d, nn.GroupNorm, nn.LayerNorm)


def default_init_bounds(model: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """(low, high), aligned with ``flatten_parameters_(model)``, such that PyTorch's default init of
    every parameter is elementwise U(low, high).

    Conv/Linear weight: kaiming_uniform(a=sqrt(5)) has bound gain*sqrt(3/fan_in) with
    gain = sqrt(2/(1+5)), i.e. 1/sqrt(fan_in); bias: U(+-1/sqrt(fan_in)) (0 when fan_in is 0).
    Norm layers: weight 1, bias 0. BatchNorm running statistics are buffers, not covered here.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
    bound_of: dict[int, float | tuple[float, float]] = {}
    for name, module in model.named_modules():
        own = dict(module.named_parameters(recurse=False))
        if not own:
            continue
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            weight = module.weight
            fan_in = weight.shape[1] * math.prod(weight.shape[2:])
            b = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            for p in own.values():
                bound_of[id(p)] = b
        elif isinstance(module, _NORM_TYPES):
            for pname, p in own.items():
                value = 1.0 if pname == "weight" else 0.0
                bound_of[id(p)] = (value, value)
        else:
            raise TypeError(f"model: no default-init rule for module {name!r} of type "
                            f"{type(module).__name__} (known: Conv1d/2d/3d, Linear, BatchNorm, InstanceNorm, "
                            f"GroupNorm, LayerNorm)")
    params = list(model.parameters())
    if not params:
        raise ValueError("model: has no parameters")
    total = sum(p.numel() for p in params)
    low = torch.empty(total, dtype=params[0].dtype, device=params[0].device)
    high = torch.empty_like(low)
    offset = 0
    for p in params:
        b = bound_of[id(p)]
        lo, hi = (-b, b) if isinstance(b, float) else b
        low[offset:offset + p.numel()] = lo
        high[offset:offset + p.numel()] = hi
        offset += p.numel()
    return low, high


def reinit_(flat: torch.Tensor, bounds: tuple[torch.Tensor, torch.Tensor],
            generator: torch.Generator | None = None, uniform: torch.Tensor | None = None) -> torch.Tensor:
    """In place: flat <- low + (high - low) * U[0, 1), one ``torch.rand`` on flat's device (no sync),
    or with the given ``uniform`` draws (flat's shape; the condensation loop draws them ahead).

    With ``bounds = default_init_bounds(model)`` this redraws a fresh default-initialised network.
    """
    if not isinstance(flat, torch.Tensor) or flat.dim() != 1 or not flat.is_floating_point():
        raise ValueError(f"flat: expected a 1-D floating-point tensor, got "
                         f"{flat.dtype if isinstance(flat, torch.Tensor) else type(flat).__name__} "
                         f"of shape {tuple(flat.shape) if isinstance(flat, torch.Tensor) else ''}")
    if not (isinstance(bounds, (tuple, list)) and len(bounds) == 2
            and all(isinstance(b, torch.Tensor) for b in bounds)):
        raise ValueError("bounds: expected a (low, high) pair of tensors from default_init_bounds")
    low, high = bounds
    for bname, b in (("low", low), ("high", high)):
        if b.shape != flat.shape or b.device != flat.device or b.dtype != flat.dtype:
            raise ValueError(f"bounds: {bname} must match flat (shape {tuple(flat.shape)}, {flat.dtype}, on "
                             f"{flat.device}), got shape {tuple(b.shape)}, {b.dtype}, on {b.device}")
    if generator is not None and generator.device.type != flat.device.type:
        raise ValueError(f"generator: must be on flat's device type {flat.device.type!r}, "
                         f"got {generator.device.type!r}")
    u = torch.rand(flat.shape, generator=generator, dtype=flat.dtype, device=flat.device) if uniform is None \
        else uniform
    torch.addcmul(low, high - low, u, out=flat)
    return flat
