"""torch.library registration of dance_ext::class_mean_mmd and its backward op: fake
(meta) kernels for tracing, and autograd (gradient for f_syn only; the backward op is
itself differentiable, so double backward works)."""
from __future__ import annotations

import torch

from .extension import available


def _fake_forward(f_real, f_syn, real_labels, syn_labels, num_classes):
    torch._check(f_real.dim() == f_syn.dim(), lambda: "f_syn: expected as many dims as f_real")
    torch._check(f_real.shape[-1] == f_syn.shape[-1], lambda: "f_syn: expected the feature dimension D of f_real")
    classes = f_real.shape[0] if f_real.dim() == 3 else num_classes
    return f_syn.new_empty(classes), f_syn.new_empty(classes, f_syn.shape[-1])


def _fake_backward(grad_per_class, diff, f_syn, syn_labels):
    torch._check(f_syn.shape[-1] == diff.shape[-1], lambda: "f_syn: expected the feature dimension D of diff")
    return diff.new_empty(f_syn.shape)


def _shape_only(like: torch.Tensor, shape) -> torch.Tensor:
    # The backward op reads only f_syn's shape: a stride-0 view avoids keeping f_syn alive.
    return like.new_zeros(()).expand(shape)


def _setup_forward(ctx, inputs, output):
    _, f_syn, _, syn_labels, _ = inputs
    ctx.set_materialize_grads(False)
    ctx.syn_shape = f_syn.shape
    ctx.save_for_backward(output[1], syn_labels)


def _backward_forward(ctx, grad_per_class, grad_diff):
    diff, syn_labels = ctx.saved_tensors
    if not ctx.needs_input_grad[1] or (grad_per_class is None and grad_diff is None):
        return None, None, None, None, None
    f_syn = _shape_only(diff, ctx.syn_shape)
    if grad_diff is None:
        grad = torch.ops.dance_ext.class_mean_mmd_backward(grad_per_class, diff, f_syn, syn_labels)
    else:
        # diff = mu_syn - mu_real depends on f_syn too (its row gradient is grad_diff_c / n_c).
        # The same broadcast gives both terms: 2 * (1/2) * (2 g_c diff_c + grad_diff_c) / n_c.
        combined = grad_diff if grad_per_class is None else torch.addcmul(
            grad_diff, grad_per_class.unsqueeze(1), diff, value=2)
        half = combined.new_full((combined.shape[0],), 0.5)
        grad = torch.ops.dance_ext.class_mean_mmd_backward(half, combined, f_syn, syn_labels)
    return None, grad, None, None, None


def _setup_backward(ctx, inputs, output):
    grad_per_class, diff, f_syn, syn_labels = inputs
    ctx.syn_shape = f_syn.shape
    ctx.save_for_backward(grad_per_class, diff, syn_labels)


def _backward_backward(ctx, grad_out):
    # out[i] = 2 g_c diff_c / n_c is bilinear in (g, diff): with S_c = sum of grad_out over
    # the rows of class c, d/dg_c = 2 <S_c, diff_c> / n_c and d/d diff_c = 2 g_c S_c / n_c.
    grad_per_class, diff, syn_labels = ctx.saved_tensors
    classes = diff.shape[0]
    if syn_labels is None:
        sums = grad_out.sum(1)
        scale = (2.0 / max(ctx.syn_shape[1], 1)) * grad_out.new_ones(classes)
    else:
        sums = grad_out.new_zeros(classes, diff.shape[1]).index_add(0, syn_labels, grad_out)
        counts = grad_out.new_zeros(classes).index_add(0, syn_labels, grad_out.new_ones(syn_labels.shape[0]))
        scale = 2.0 / counts.clamp_min(1)
    grad_g = (sums * diff).sum(1) * scale if ctx.needs_input_grad[0] else None
    grad_diff = sums * (grad_per_class * scale).unsqueeze(1) if ctx.needs_input_grad[1] else None
    return grad_g, grad_diff, None, None


if available():
    torch.library.register_fake("dance_ext::class_mean_mmd")(_fake_forward)
    torch.library.register_fake("dance_ext::class_mean_mmd_backward")(_fake_backward)
    torch.library.register_autograd("dance_ext::class_mean_mmd", _backward_forward, setup_context=_setup_forward)
    torch.library.register_autograd("dance_ext::class_mean_mmd_backward", _backward_backward,
                                    setup_context=_setup_backward)
