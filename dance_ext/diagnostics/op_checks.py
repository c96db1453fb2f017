"""Checks of the two custom ops on one device: the kernel (``backend="extension"``)
against the pure-PyTorch oracle (``backend="reference"``) forward and backward over a
grid of random inputs, float64 gradcheck, ``torch.library.opcheck``, and which half
types the kernels take."""
from __future__ import annotations

import functools
import zlib
from typing import Callable

import torch

from .. import augment_params as augment, ops
from .core import Outcome, Skip, Worst, kernel_skip

# Copy-path rows move pixels without resampling (flip, integer shift, cutout, colour);
# resampled rows scale or rotate (bilinear). Per convention: vico applies one op per row,
# idc applies flip, colour and cutout always plus one of the rest.
STRATEGIES = {
    "copy": {"vico": "color_crop_cutout_flip", "idc": "color_crop_cutout_flip"},
    "resampled": {"vico": "scale_rotate", "idc": "color_cutout_flip_scale_rotate"},
}
SIZES = ((8, 8), (13, 17), (28, 28), (32, 32), (64, 48), (128, 128))
QUICK_SIZES = ((8, 8), (13, 17), (32, 32))
CHANNELS = (1, 3)
LAYOUTS = ("index", "per_sample", "broadcast")
# float32: the kernels' pixel math vs the oracle's op-by-op torch ops (grid_sample's normalised
# float grid adds ~1e-6 in coordinates on resampled rows); float64: round-off only
AUGMENT_TOL = {("copy", torch.float32): (1e-5, 1e-5), ("resampled", torch.float32): (1e-4, 1e-4),
               ("copy", torch.float64): (1e-10, 1e-10), ("resampled", torch.float64): (1e-10, 1e-10)}
# (C, n_real, n_syn, D): one class of one feature, DM at CIFAR-10 (256 real, ipc 10, ConvNet-3's
# 2048 features), many classes, few samples, a long feature vector
MMD_SHAPES = ((1, 3, 1, 1), (10, 256, 10, 2048), (100, 8, 2, 64), (1000, 2, 1, 8), (3, 5, 3, 8192))
QUICK_MMD_SHAPES = ((1, 3, 1, 1), (10, 32, 10, 512), (100, 8, 2, 64))
MMD_TOL = {torch.float32: (1e-5, 1e-5), torch.float64: (1e-12, 1e-12)}
DTYPES = (torch.float32, torch.float64)
HALF_TYPES = (torch.float16, torch.bfloat16)


def _generator(*key) -> torch.Generator:
    return torch.Generator().manual_seed(zlib.crc32(repr(key).encode()))


def _short(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


# ---- siamese_augment --------------------------------------------------------------------------
def augment_case(kind: str, convention: str, channels: int, size, dtype, device, layout: str = "index"):
    """Random x, grad_y and parameter rows: per-class rows through an index, one row per
    sample, or one broadcast row (``layout``)."""
    gen = _generator(kind, convention, channels, size, layout)
    h, w = size
    n = 4 if h * w >= 64 * 64 else 8
    rows = {"index": 3, "per_sample": n, "broadcast": 1}[layout]
    index = torch.randint(rows, (n,), generator=gen) if layout == "index" else None
    params = augment.sample_params(rows, STRATEGIES[kind][convention], (h, w), convention, generator=gen)
    x = torch.randn(n, channels, h, w, generator=gen, dtype=dtype)
    grad_y = torch.randn(n, channels, h, w, generator=gen, dtype=dtype)
    return (x.to(device), params.to(device, dtype), None if index is None else index.to(device),
            grad_y.to(device))


def augment_forward_backward(backend: str, x, params, index, grad_y):
    x = x.detach().clone().requires_grad_()
    y = ops.siamese_augment(x, params, index, backend=backend)
    (grad_x,) = torch.autograd.grad(y, x, grad_y)
    return y, grad_x


def _merge(fwd: Worst, bwd: Worst, cases: int, grid: str) -> Outcome:
    worst = fwd if fwd.ratio >= bwd.ratio else bwd
    out = worst.outcome(f"fwd {fwd.error:.1e} / bwd {bwd.error:.1e} over {cases} cases ({grid})")
    out.worst_error = max(fwd.error, bwd.error)
    return out


def augment_parity(kind: str, convention: str, dtype, device, sizes=SIZES) -> Outcome:
    kernel_skip("siamese_augment", device)
    fwd, bwd = Worst(*AUGMENT_TOL[kind, dtype]), Worst(*AUGMENT_TOL[kind, dtype])
    cases = [(c, s, lay) for c in CHANNELS for s in sizes for lay in LAYOUTS]
    for channels, size, layout in cases:
        x, params, index, grad_y = augment_case(kind, convention, channels, size, dtype, device, layout)
        y, gx = augment_forward_backward("extension", x, params, index, grad_y)
        y_ref, gx_ref = augment_forward_backward("reference", x, params, index, grad_y)
        where = f"C={channels} {size[0]}x{size[1]} {layout}"
        fwd.add(y, y_ref, where + " fwd")
        bwd.add(gx, gx_ref, where + " bwd")
    grid = f"C 1,3 x {sizes[0][0]}..{sizes[-1][0]} px x 3 layouts"
    return _merge(fwd, bwd, len(cases), grid)


# ---- class_mean_mmd ------------------------------------------------------------------------------
def _labels(num_classes: int, total: int, gen) -> torch.Tensor:
    """Every class at least once, the rest random, shuffled (ragged class sizes)."""
    extra = torch.randint(num_classes, (max(total - num_classes, 0),), generator=gen)
    labels = torch.cat([torch.arange(num_classes), extra])
    return labels[torch.randperm(labels.numel(), generator=gen)]


def mmd_case(layout: str, shape, dtype, device):
    classes, n_real, n_syn, dim = shape
    gen = _generator(layout, shape, dtype)
    if layout == "class-major":
        f_real = torch.randn(classes, n_real, dim, generator=gen, dtype=dtype)
        f_syn = torch.randn(classes, n_syn, dim, generator=gen, dtype=dtype)
        labels = (None, None)
    else:
        labels = (_labels(classes, classes * n_real, gen), _labels(classes, classes * n_syn, gen))
        f_real = torch.randn(labels[0].numel(), dim, generator=gen, dtype=dtype)
        f_syn = torch.randn(labels[1].numel(), dim, generator=gen, dtype=dtype)
    weights = torch.randn(classes, generator=gen, dtype=dtype)  # a non-uniform upstream gradient
    real_labels, syn_labels = (None, None) if labels[0] is None else (labels[0].to(device), labels[1].to(device))
    return f_real.to(device), f_syn.to(device), real_labels, syn_labels, classes, weights.to(device)


def mmd_forward_backward(backend: str, f_real, f_syn, real_labels, syn_labels, classes, weights):
    f_syn = f_syn.detach().clone().requires_grad_()
    per_class = ops.class_mean_mmd(f_real, f_syn, real_labels, syn_labels, classes, "none", backend=backend)
    total = ops.class_mean_mmd(f_real, f_syn, real_labels, syn_labels, classes, "sum", backend=backend)
    (grad,) = torch.autograd.grad((per_class * weights).sum(), f_syn)
    return torch.cat([per_class.detach(), total.detach().view(1)]), grad


def mmd_parity(layout: str, dtype, device, shapes=MMD_SHAPES) -> Outcome:
    kernel_skip("class_mean_mmd", device)
    fwd, bwd = Worst(*MMD_TOL[dtype]), Worst(*MMD_TOL[dtype])
    for shape in shapes:
        case = mmd_case(layout, shape, dtype, device)
        out, grad = mmd_forward_backward("extension", *case)
        out_ref, grad_ref = mmd_forward_backward("reference", *case)
        where = "C={} n_real={} n_syn={} D={}".format(*shape)
        fwd.add(out, out_ref, where + " fwd")
        bwd.add(grad, grad_ref, where + " bwd")
    classes, dims = [s[0] for s in shapes], [s[3] for s in shapes]
    return _merge(fwd, bwd, len(shapes), f"C {min(classes)}..{max(classes)}, D {min(dims)}..{max(dims)}")


def augment_edge_cases(device) -> Outcome:
    """An empty batch, a channels-last input, one broadcast row selected through an index."""
    kernel_skip("siamese_augment", device)
    worst = Worst(*AUGMENT_TOL["resampled", torch.float32])
    x, params, index, grad_y = augment_case("resampled", "idc", 3, (13, 17), torch.float32, device)
    empty = ops.siamese_augment(x[:0], params[:1], None, backend="extension")
    if empty.shape != x[:0].shape:
        raise AssertionError(f"empty batch: got shape {tuple(empty.shape)}")
    want = augment_forward_backward("reference", x, params, index, grad_y)
    channels_last = x.contiguous(memory_format=torch.channels_last)
    for got, w in zip(augment_forward_backward("extension", channels_last, params, index, grad_y), want):
        worst.add(got, w, "channels_last")
    one_row = torch.zeros_like(index)
    for got, w in zip(augment_forward_backward("extension", x, params[:1], one_row, grad_y),
                      augment_forward_backward("reference", x, params[:1], None, grad_y)):
        worst.add(got, w, "index into one row")
    return worst.outcome("empty batch, channels_last input, one row through an index")


def mmd_edge_cases(device) -> Outcome:
    """Non-contiguous (transposed) features; D not a multiple of the kernels' 32-feature chunks."""
    kernel_skip("class_mean_mmd", device)
    worst = Worst(*MMD_TOL[torch.float64])
    f_real, f_syn, _, _, classes, weights = mmd_case("class-major", (7, 19, 5, 70), torch.float64, device)
    transposed = [f.transpose(0, 1).contiguous().transpose(0, 1) for f in (f_real, f_syn)]  # same values
    for got, want in zip(mmd_forward_backward("extension", *transposed, None, None, classes, weights),
                         mmd_forward_backward("reference", f_real, f_syn, None, None, classes, weights)):
        worst.add(got, want, "non-contiguous C=7 n_real=19 n_syn=5 D=70")
    return worst.outcome("non-contiguous inputs, D=70")


# ---- gradients, opcheck, half types -------------------------------------------------------------
GRADCHECK_TOL = "gradcheck defaults (float64)"


def augment_gradcheck(device) -> Outcome:
    kernel_skip("siamese_augment", device)
    for kind, convention in (("copy", "vico"), ("resampled", "idc")):
        x, params, index, _ = augment_case(kind, convention, 2, (8, 9), torch.float64, device)
        forward = functools.partial(ops.siamese_augment, params=params, index=index, backend="extension")
        backward = functools.partial(torch.ops.dance_ext.siamese_augment_backward, params=params, index=index)
        x = x.requires_grad_()
        torch.autograd.gradcheck(forward, (x,))
        torch.autograd.gradgradcheck(forward, (x,))
        torch.autograd.gradcheck(backward, (torch.randn_like(x).requires_grad_(),))
    return Outcome(tolerance=GRADCHECK_TOL, note="1st and 2nd order, copy and resampled rows, backward op")


def mmd_gradcheck(device) -> Outcome:
    kernel_skip("class_mean_mmd", device)
    for layout in ("class-major", "ragged"):
        f_real, f_syn, real_labels, syn_labels, classes, _ = mmd_case(layout, (3, 3, 2, 4), torch.float64, device)
        per_class = functools.partial(ops.class_mean_mmd, f_real, real_labels=real_labels, syn_labels=syn_labels,
                                      num_classes=classes, reduction="none", backend="extension")
        f_syn = f_syn.requires_grad_()
        torch.autograd.gradcheck(per_class, (f_syn,))
        torch.autograd.gradgradcheck(per_class, (f_syn,))
    return Outcome(tolerance=GRADCHECK_TOL, note="1st and 2nd order, class-major and ragged")


def opcheck(op: str, device) -> Outcome:
    """torch.library.opcheck: schema, autograd registration, fake (meta) kernel, AOT dispatch."""
    kernel_skip(op.replace("_backward", ""), device)
    if op.startswith("siamese_augment"):
        x, params, index, grad_y = augment_case("resampled", "vico", 3, (8, 10), torch.float32, device)
        args = (x.requires_grad_(), params, index) if op == "siamese_augment" else (grad_y, params, index)
    else:
        f_real, f_syn, real_labels, syn_labels, classes, _ = mmd_case("ragged", (3, 3, 2, 4), torch.float64, device)
        if op == "class_mean_mmd":
            args = (f_real, f_syn.requires_grad_(), real_labels, syn_labels, classes)
        else:
            grad = torch.randn(classes, dtype=torch.float64, device=device, requires_grad=True)
            diff = torch.randn(classes, 4, dtype=torch.float64, device=device, requires_grad=True)
            args = (grad, diff, f_syn, syn_labels)
    torch.library.opcheck(getattr(torch.ops.dance_ext, op), args)
    return Outcome(tolerance="opcheck", note="schema, autograd registration, fake tensor, AOT dispatch")


def _half_inputs(op: str, dtype, device):
    if op == "siamese_augment":
        x, params, index, _ = augment_case("resampled", "idc", 3, (8, 8), torch.float32, device)
        return x.to(dtype), params.to(dtype), index
    f_real, f_syn, _, _, classes, _ = mmd_case("class-major", (3, 3, 2, 4), torch.float32, device)
    return f_real.to(dtype), f_syn.to(dtype), None, None, classes


def half_types(op: str, device) -> Outcome:
    """Which half types the kernel takes; those it takes are compared with the float32
    oracle on the same (rounded) inputs."""
    kernel_skip(op, device)
    refused, worst = [], Worst(1e-2, 1e-2)
    for dtype in HALF_TYPES:
        args = _half_inputs(op, dtype, device)
        try:
            got = getattr(torch.ops.dance_ext, op)(*args)
        except RuntimeError as exc:
            refused.append(f"{_short(dtype)} ('{str(exc).splitlines()[0][:100]}')")
            continue
        up = [a.float() if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args]
        want = _reference(op, up)
        worst.add(got if op == "siamese_augment" else got[0], want, _short(dtype))
    if len(refused) == len(HALF_TYPES):
        raise Skip(f"the kernels take float32 and float64 only: {'; '.join(refused)}; "
                   "backend='auto' runs the reference op for half types")
    return worst.outcome("refused: " + ", ".join(refused) if refused else "")


def _reference(op: str, args):
    if op == "siamese_augment":
        return ops.siamese_augment(*args, backend="reference")
    f_real, f_syn, real_labels, syn_labels, classes = args
    return ops.class_mean_mmd(f_real, f_syn, real_labels, syn_labels, classes, "none", backend="reference")


def auto_routing(device) -> Outcome:
    """backend='auto' runs the kernels where they exist: its results equal backend='extension'
    bit for bit (a kernel registered for the wrong dispatch key would silently fall back)."""
    for op in ("siamese_augment", "class_mean_mmd"):
        kernel_skip(op, device)
    x, params, index, grad_y = augment_case("resampled", "idc", 3, (13, 17), torch.float32, device)
    same = [torch.equal(a, b) for a, b in zip(augment_forward_backward("auto", x, params, index, grad_y),
                                               augment_forward_backward("extension", x, params, index, grad_y))]
    case = mmd_case("ragged", (10, 4, 2, 32), torch.float32, device)
    same += [torch.equal(a, b) for a, b in zip(mmd_forward_backward("auto", *case),
                                               mmd_forward_backward("extension", *case))]
    if not all(same):
        raise AssertionError(f"backend='auto' differs from backend='extension' (equal: {same})")
    return Outcome(tolerance="bit-identical", note="siamese_augment and class_mean_mmd, float32")


def checks(device: torch.device, quick: bool) -> list[tuple[str, Callable[[], Outcome]]]:
    """(name, check) of every op check, in table order."""
    out = []
    sizes, shapes = (QUICK_SIZES, QUICK_MMD_SHAPES) if quick else (SIZES, MMD_SHAPES)
    for kind in ("copy", "resampled"):
        for convention in augment.CONVENTIONS:
            for dtype in DTYPES:
                out.append((f"siamese_augment {convention} {kind} rows {_short(dtype)} fwd+bwd",
                            lambda k=kind, c=convention, d=dtype: augment_parity(k, c, d, device, sizes)))
    for layout in ("class-major", "ragged"):
        for dtype in DTYPES:
            out.append((f"class_mean_mmd {layout} {_short(dtype)} fwd+bwd",
                        lambda lay=layout, d=dtype: mmd_parity(lay, d, device, shapes)))
    out.append(("siamese_augment edge cases", lambda: augment_edge_cases(device)))
    out.append(("class_mean_mmd edge cases", lambda: mmd_edge_cases(device)))
    out.append(("backend='auto' runs the kernels", lambda: auto_routing(device)))
    out.append(("siamese_augment float16/bfloat16", lambda: half_types("siamese_augment", device)))
    out.append(("class_mean_mmd float16/bfloat16", lambda: half_types("class_mean_mmd", device)))
    out.append(("gradcheck siamese_augment float64", lambda: augment_gradcheck(device)))
    out.append(("gradcheck class_mean_mmd float64", lambda: mmd_gradcheck(device)))
    for op in ("siamese_augment", "siamese_augment_backward", "class_mean_mmd", "class_mean_mmd_backward"):
        out.append((f"opcheck {op}", lambda o=op: opcheck(o, device)))
    return out
