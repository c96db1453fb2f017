"""Kernel safety: what the GPU readiness fixes guarantee, tested on the CPU kernels that share
their math and checks with the CUDA ones (and on CUDA too where a GPU is present).

* non-finite upstream gradients at output pixels that read nothing (cut out, cropped away,
  zero padded) stay out of the input gradient (csrc/kernels/augment_math.h transpose_taps);
* index values are checked before any work, also when C·H·W = 0 (csrc/checks/);
* only cpu and cuda tensors reach the extension; any other device runs the reference ops;
* torch.use_deterministic_algorithms(True): the CPU kernels are deterministic and never alert;
* the DANCE_EXT_DISABLE_KERNELS kill switch.
"""
import json
import os
import subprocess
import sys
import warnings

import pytest
import torch

from dance_ext import extension, augment_params as augment, ops, reference
from dance_ext.extension import has_kernel

needs_kernels = pytest.mark.skipif(
    not (has_kernel("siamese_augment", "cpu") and has_kernel("class_mean_mmd", "cpu")),
    reason=f"the compiled extension's CPU kernels are not built or are switched off ({extension.build_info()})")
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not (torch.cuda.is_available() and has_kernel("siamese_augment", "cuda")), reason="no CUDA kernels here"))]
TOL = {torch.float32: dict(atol=1e-5, rtol=1e-5), torch.float64: dict(atol=1e-10, rtol=1e-10)}


def _row(**columns) -> list[float]:
    row = list(augment.IDENTITY_ROW)
    for name, value in columns.items():
        row[augment.PARAM_COLUMNS.index(name)] = value
    return row


def _dead_pixel_rows(contrast: float, dtype) -> torch.Tensor:
    """Rows whose outputs have pixels that read no input pixel: resampled rows (zoom out so the
    borders sample outside the image, rotate, both with a crop and a cut-out) and an integral
    one (flip, shift, cut-out)."""
    colour = dict(brightness=0.2, saturation=0.7, contrast=contrast)
    return torch.tensor([
        _row(scale_w=1.4, scale_h=1.3, shift_h=2, shift_w=-1, cutout_h=5, cutout_w=4, cutout_size_h=4,
             cutout_size_w=5, **colour),
        _row(angle=0.4, scale_w=0.9, scale_h=1.1, shift_h=-3, cutout_h=9, cutout_w=2, cutout_size_h=3,
             cutout_size_w=3, flip=1.0, **colour),
        _row(flip=1.0, shift_h=1, shift_w=3, cutout_h=3, cutout_w=6, cutout_size_h=4, cutout_size_w=4, **colour),
    ], dtype=dtype)


def _dead_pixels(params: torch.Tensor, index: torch.Tensor, shape) -> torch.Tensor:
    """Output pixels whose bilinear taps all have weight 0, from the kernel itself: with neutral
    colour (brightness 0, saturation 1, contrast 1) the op maps an image of ones to Σ_k w_k."""
    neutral = params.clone()
    neutral[:, augment.BRIGHTNESS], neutral[:, augment.SATURATION], neutral[:, augment.CONTRAST] = 0.0, 1.0, 1.0
    ones = torch.ones(shape, dtype=params.dtype, device=params.device)
    return torch.ops.dance_ext.siamese_augment(ones, neutral, index) == 0


# --- 2a: a NaN/inf upstream gradient where the output reads nothing ---------------------------

@needs_kernels
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("poison", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("contrast", [1.0, 0.6])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_nonfinite_grad_at_dead_pixels_stays_out(device, poison, contrast, dtype):
    """Contract: the input gradient ignores grad_y at output pixels that read no input pixel
    (cut out, cropped away, zero padded outside the image): it equals the gradient of grad_y
    with those entries zeroed, finite, bit for bit. The reference (x·mask, grid_sample) instead
    propagates 0·NaN = NaN there, so it is compared with the zeroed grad_y."""
    gen = torch.Generator().manual_seed(3)
    n, c, h, w = 5, 3, 12, 10
    x = torch.rand(n, c, h, w, generator=gen, dtype=dtype)
    params = _dead_pixel_rows(contrast, dtype)
    index = torch.tensor([0, 1, 2, 0, 1])
    dead = _dead_pixels(params, index, x.shape)
    # each sample has dead pixels, and the resampled rows also outside their cut-out box
    assert dead.flatten(1).any(1).all()
    assert dead[0, 0, :, 0].all() and dead[1].sum() > 9 * c  # zoom-out border; rotation corners + cut-out
    grad_y = torch.randn(x.shape, generator=gen, dtype=dtype)
    poisoned, clean = grad_y.masked_fill(dead, poison), grad_y.masked_fill(dead, 0.0)

    backward = torch.ops.dance_ext.siamese_augment_backward
    to = (lambda t: t.to(device))
    got = backward(to(poisoned), to(params), to(index)).cpu()
    assert torch.isfinite(got).all()
    assert torch.equal(got, backward(to(clean), to(params), to(index)).cpu())
    # through autograd of the public op too
    xk = x.detach().clone().to(device).requires_grad_()
    ops.siamese_augment(xk, to(params), to(index), backend="extension").backward(to(poisoned))
    assert torch.equal(xk.grad.cpu(), got)

    xr = x.detach().clone().requires_grad_()
    reference.siamese_augment(xr, params, index).backward(clean)
    torch.testing.assert_close(got, xr.grad, **TOL[dtype])
    xr.grad = None
    reference.siamese_augment(xr, params, index).backward(poisoned)
    assert not torch.isfinite(xr.grad).all()  # the reference does not ignore them: the kernels define this


# --- 2b: index values checked before any work ---------------------------------------------------

@needs_kernels
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(3, 2, 6, 5), (3, 0, 6, 5), (3, 2, 0, 5), (3, 2, 6, 0)])
@pytest.mark.parametrize("op", ["siamese_augment", "siamese_augment_backward"])
@pytest.mark.parametrize("bad", [3, -1])
def test_index_out_of_range_is_one_line_error(device, shape, op, bad):
    x = torch.zeros(shape, device=device)
    params = augment.identity_params(3, device=device)
    index = torch.tensor([0, bad, 1], device=device)
    message = (f"siamese_augment: index: expected values in [0, 3) (rows of params), got {bad} at position 1")
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        getattr(torch.ops.dance_ext, op)(x, params, index)
    # the device is still usable (no device-side assert), and a good index works
    good = getattr(torch.ops.dance_ext, op)(x, params, index.clamp(0, 2))
    assert good.shape == x.shape


# --- 2c: only cpu and cuda tensors reach the extension --------------------------------------------

@pytest.mark.parametrize("device", ["meta", "mps", "xpu", torch.device("meta")])
@pytest.mark.parametrize("op", ["siamese_augment", "class_mean_mmd"])
def test_other_devices_have_no_kernel(device, op):
    assert has_kernel(op, device) is False


@needs_kernels
def test_cpu_has_kernels():
    assert has_kernel("siamese_augment", "cpu") and has_kernel("class_mean_mmd", torch.device("cpu"))


@needs_kernels
def test_meta_tensors_take_the_reference_path(monkeypatch):
    calls = []

    def spy(name):
        real = getattr(reference, name)

        def wrapped(*args, **kwargs):
            calls.append(name)
            return real(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(reference, "siamese_augment", spy("siamese_augment"))
    monkeypatch.setattr(reference, "class_mean_mmd", spy("class_mean_mmd"))
    x = torch.empty(4, 3, 8, 8, device="meta")
    y = ops.siamese_augment(x, augment.identity_params(1, device="meta"))
    assert y.device.type == "meta" and y.shape == x.shape
    loss = ops.class_mean_mmd(torch.empty(2, 5, 7, device="meta"), torch.empty(2, 3, 7, device="meta"))
    assert loss.device.type == "meta"
    assert calls == ["siamese_augment", "class_mean_mmd"]
    with pytest.raises(RuntimeError, match="dance_ext::siamese_augment has no meta kernel"):
        ops.siamese_augment(x, augment.identity_params(1, device="meta"), backend="extension")


# --- 2d: deterministic mode ---------------------------------------------------------------------

@pytest.fixture
def deterministic():
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


def _augment_and_mmd_grads(device, threads):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        gen = torch.Generator().manual_seed(11)
        x = torch.randn(12, 3, 16, 16, generator=gen)
        params = augment.sample_params(4, augment.DM_STRATEGY, (16, 16), "vico", generator=gen)
        params[:, augment.SCALE_W] = 1.2  # every row resampled: the CUDA backward's atomics case
        index = torch.randint(4, (12,), generator=gen)
        f_real = torch.randn(20, 32, generator=gen)
        labels_real = torch.arange(20) % 4
        x, params, index, f_real, labels_real = (t.to(device) for t in (x, params, index, f_real, labels_real))
        x.requires_grad_()
        y = ops.siamese_augment(x, params, index, backend="extension")
        feats = y.flatten(1)[:, :32]
        loss = ops.class_mean_mmd(f_real, feats, labels_real, labels_real[:12], 4, backend="extension")
        loss.backward()
        return y.detach().cpu(), loss.detach().cpu(), x.grad.cpu()
    finally:
        torch.set_num_threads(before)


@needs_kernels
def test_cpu_kernels_are_deterministic_and_do_not_alert(deterministic):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warn_only alerts would be warnings
        first = _augment_and_mmd_grads("cpu", 1)
        again = _augment_and_mmd_grads("cpu", 1)
        threaded = _augment_and_mmd_grads("cpu", 2)
    for a, b, c in zip(first, again, threaded):
        assert torch.equal(a, b) and torch.equal(a, c)


@pytest.mark.skipif(not (torch.cuda.is_available() and has_kernel("siamese_augment", "cuda")),
                    reason="no CUDA kernels here")
def test_cuda_backward_alerts_for_resampled_rows_only(deterministic):
    with pytest.raises(RuntimeError, match=r"dance_ext::siamese_augment_backward \(CUDA\)"):
        _augment_and_mmd_grads("cuda", 1)
    # integral rows only (flip, crop, cutout, colour): deterministic, no alert
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(6, 3, 32, 32, generator=gen, device="cpu").cuda()
    params = augment.sample_params(6, augment.DANCE_STRATEGY, (32, 32), "idc", generator=gen).cuda()
    grad_y = torch.randn_like(x)
    one = torch.ops.dance_ext.siamese_augment_backward(grad_y, params, None)
    two = torch.ops.dance_ext.siamese_augment_backward(grad_y, params, None)
    assert torch.equal(one, two)


# --- 2e: the DANCE_EXT_DISABLE_KERNELS kill switch ------------------------------------------------

_PROBE = r"""
import json, warnings
import torch
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import dance_ext
from dance_ext import extension, augment_params as augment, ops, reference
calls = []
for name in ("siamese_augment", "class_mean_mmd"):
    def wrapped(*args, _name=name, _real=getattr(reference, name), **kwargs):
        calls.append(_name)
        return _real(*args, **kwargs)
    setattr(reference, name, wrapped)
ops.siamese_augment(torch.rand(2, 3, 8, 8), augment.identity_params(1))
ops.class_mean_mmd(torch.rand(2, 4, 5), torch.rand(2, 3, 5))
refused = []
for name, call in (("siamese_augment", lambda: ops.siamese_augment(torch.rand(2, 3, 8, 8), augment.identity_params(1),
                                                                     backend="extension")),
                   ("class_mean_mmd", lambda: ops.class_mean_mmd(torch.rand(2, 4, 5), torch.rand(2, 3, 5),
                                                                  backend="extension"))):
    try:
        call()
    except RuntimeError as exc:
        assert "switched off by DANCE_EXT_DISABLE_KERNELS" in str(exc), exc
        refused.append(name)
print(json.dumps({"has_kernel": {op: extension.has_kernel(op, "cpu") for op in extension.OPS},
                  "reference_calls": calls, "refused": refused,
                  "info": dance_ext.build_info().get("disabled_kernels", []),
                  "warnings": [str(w.message) for w in caught if "DANCE_EXT_DISABLE_KERNELS" in str(w.message)]}))
"""


def _probe(value: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "DANCE_EXT_DISABLE_KERNELS"}
    if value is not None:
        env["DANCE_EXT_DISABLE_KERNELS"] = value
    env.setdefault("OMP_NUM_THREADS", "1")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, cwd=root, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@needs_kernels
@pytest.mark.parametrize("value, disabled", [
    (None, []),
    ("siamese_augment", ["siamese_augment"]),
    (" class_mean_mmd , siamese_augment", ["class_mean_mmd", "siamese_augment"]),
    ("all", ["class_mean_mmd", "siamese_augment"]),
])
def test_kill_switch_in_a_fresh_process(value, disabled):
    got = _probe(value)
    assert got["has_kernel"] == {op: op not in disabled for op in extension.OPS}
    assert sorted(got["reference_calls"]) == disabled
    assert sorted(got["refused"]) == disabled
    assert got["info"] == disabled
    assert got["warnings"] == []


@pytest.mark.parametrize("value, disabled", [
    (None, set()), ("", set()), ("0", set()), ("1", {"siamese_augment", "class_mean_mmd"}),
    ("ALL", {"siamese_augment", "class_mean_mmd"}), ("class_mean_mmd,", {"class_mean_mmd"}),
])
def test_kill_switch_values(value, disabled):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert extension._parse_disabled(value) == disabled


def test_kill_switch_warns_about_unknown_names():
    with pytest.warns(RuntimeWarning, match="unknown op name\\(s\\) siamese_augmnet"):
        assert extension._parse_disabled("siamese_augmnet,class_mean_mmd") == {"class_mean_mmd"}
