"""torch.library registration of dance_ext::siamese_augment and its backward:
fake (meta) kernels for tracing, and autograd.

The op is affine in x, y = J·x + const, so its backward is grad_x = Jᵀ·grad_y (the
registered backward op) and the backward op's own derivative is J: the forward op
with the brightness column (the only constant term) set to zero. Both are therefore
differentiable to any order.
"""
from __future__ import annotations

import torch

from .extension import available
from .augment_params import BRIGHTNESS


def _fake_augment(x, params, index):
    torch._check(x.dim() == 4, lambda: f"x: expected a 4-D (N, C, H, W) tensor, got {x.dim()} dims")
    return x.new_empty(x.shape)


def _fake_augment_backward(grad_y, params, index):
    torch._check(grad_y.dim() == 4, lambda: f"grad_y: expected a 4-D (N, C, H, W) tensor, got {grad_y.dim()} dims")
    return grad_y.new_empty(grad_y.shape)


def _setup_context(ctx, inputs, output):
    _, params, index = inputs
    ctx.save_for_backward(params, index)


def _augment_grad(ctx, grad_y):
    params, index = ctx.saved_tensors
    return torch.ops.dance_ext.siamese_augment_backward(grad_y, params, index), None, None


def _linear_part(params: torch.Tensor) -> torch.Tensor:
    """The rows with zero brightness: the forward op is then J·x without the constant."""
    zero = torch.zeros_like(params[:, BRIGHTNESS:BRIGHTNESS + 1])
    return torch.cat((params[:, :BRIGHTNESS], zero, params[:, BRIGHTNESS + 1:]), dim=1)


def _augment_backward_grad(ctx, grad_grad_x):
    params, index = ctx.saved_tensors
    return torch.ops.dance_ext.siamese_augment(grad_grad_x, _linear_part(params), index), None, None


if available():
    torch.library.register_fake("dance_ext::siamese_augment")(_fake_augment)
    torch.library.register_fake("dance_ext::siamese_augment_backward")(_fake_augment_backward)
    torch.library.register_autograd("dance_ext::siamese_augment", _augment_grad, setup_context=_setup_context)
    torch.library.register_autograd("dance_ext::siamese_augment_backward", _augment_backward_grad,
                                    setup_context=_setup_context)
