"""Both backends of ops.siamese_augment and ops.class_mean_mmd accept the same inputs: on any input
one backend takes, the other gives the same values (NaN where it gives NaN) and the same input
gradient; an input one refuses, the other refuses with the same error class and message.

Hypothesis draws hostile-but-plausible inputs: NaN/inf parameters and pixels, shifts and cut-outs far
beyond the image, negative sizes, empty batches, C·H·W = 0, D = 0, out-of-range indices and labels,
odd ``num_classes``, tensors that require grad. Explicit cases pin the named ones
(docs/HOSTILE_INPUTS.md, "Backend agreement"). Out of scope by design: dtypes without a kernel
(``backend="extension"`` refuses float16 as unavailable) and colour products that overflow the dtype.
"""
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings, strategies as st

from dance_ext import augment_params as augment, ops, reference
from dance_ext.extension import has_kernel

pytestmark = [pytest.mark.skipif(not (has_kernel("siamese_augment", "cpu") and has_kernel("class_mean_mmd", "cpu")),
                                 reason="the compiled extension's CPU kernels are not built"),
              pytest.mark.usefixtures("single_thread")]

NAN, INF = float("nan"), float("inf")
TOL = {torch.float32: 1e-4, torch.float64: 1e-10}


def outcome(call, wrt: tuple):
    """(values, gradients of the tensors ``wrt``) of ``call()``, or (error class, message)."""
    try:
        y = call()
    except Exception as exc:  # noqa: BLE001 - the class is what is compared
        return type(exc), str(exc)
    grads = (None,) * len(wrt)
    if wrt and y.requires_grad:
        upstream = torch.randn(y.shape, generator=torch.Generator().manual_seed(0), dtype=y.dtype)
        grads = torch.autograd.grad(y, wrt, upstream, allow_unused=True)
    return y.detach(), grads


def record(result) -> None:
    """What hypothesis drew, for --hypothesis-show-statistics."""
    event(f"{result[0].__name__}: {result[1][:40]}" if isinstance(result[0], type) else
          f"values, {'all finite' if torch.isfinite(result[0]).all() else 'with NaN/inf'}")


def assert_agree(ext, ref) -> None:
    if isinstance(ext[0], type) or isinstance(ref[0], type):
        assert ext == ref, f"extension: {ext}\nreference: {ref}"
        return
    (y, grads), (y_ref, grads_ref) = ext, ref
    assert y.shape == y_ref.shape and y.dtype == y_ref.dtype
    finite = y_ref[torch.isfinite(y_ref)]
    tol = TOL[y.dtype] * (1 + (float(finite.abs().max()) if finite.numel() else 0.0))
    torch.testing.assert_close(y, y_ref, atol=tol, rtol=TOL[y.dtype], equal_nan=True)
    if not torch.isfinite(y_ref).all():
        return  # gradients are compared where the value is defined
    for grad, grad_ref in zip(grads, grads_ref):
        assert (grad is None) == (grad_ref is None), "a gradient on one backend only"
        if grad is not None:
            torch.testing.assert_close(grad, grad_ref, atol=tol, rtol=TOL[y.dtype], equal_nan=True)


def both(call, leaf, *others):
    """``call(backend, leaf)`` on each backend with a fresh copy of ``leaf`` (requires grad); the
    gradients of it and of those ``others`` that require grad."""
    results = []
    for backend in ("extension", "reference"):
        copy = leaf.detach().clone().requires_grad_()
        wrt = (copy, *(t for t in others if t is not None and t.requires_grad))
        results.append(outcome(lambda: call(backend, copy), wrt))
    return results


# ---------------------------------------------------------------------------------------
# siamese_augment

NONFINITE = [NAN, INF, -INF]
HUGE = [1e30, -1e30, 1e10, -1e10, NAN, INF, -INF]


def rarely(one_in: int):
    """True about once in ``one_in`` draws (hypothesis leans to the first element: False)."""
    return st.sampled_from([False] * (one_in - 1) + [True])


@st.composite
def column(draw, identity, plausible, hostile):
    kind = draw(st.sampled_from(["identity"] * 5 + ["plausible"] * 3 + ["hostile"] * 2))
    return identity if kind == "identity" else draw(plausible if kind == "plausible" else st.sampled_from(hostile))


def param_row():
    small = st.floats(-3, 3, allow_nan=False)
    pixels = st.one_of(st.integers(-20, 30).map(float), st.floats(-20, 30))
    return st.tuples(
        column(0.0, st.sampled_from([1.0, 0.5, 0.7]), NONFINITE),                   # flip
        column(1.0, st.floats(0.5, 2.0), [0.0, -1.0, *NONFINITE]),                  # scale_w
        column(1.0, st.floats(0.5, 2.0), [0.0, -1.0, *NONFINITE]),                  # scale_h
        column(0.0, st.floats(-3.2, 3.2), NONFINITE),                               # angle
        column(0.0, pixels, HUGE), column(0.0, pixels, HUGE),                       # shift_h, shift_w
        column(0.0, st.floats(-2, 2), NONFINITE),                                   # brightness
        column(1.0, small, NONFINITE), column(1.0, small, NONFINITE),               # saturation, contrast
        column(0.0, pixels, HUGE), column(0.0, pixels, HUGE),                       # cutout_h, cutout_w
        column(0.0, st.integers(-10, 40).map(float), HUGE),                         # cutout_size_h
        column(0.0, st.integers(-10, 40).map(float), HUGE),                         # cutout_size_w
    )


@st.composite
def augment_case(draw):
    n = draw(st.integers(0, 4))
    shape = (n, draw(st.sampled_from([1, 3, 3, 0])), draw(st.sampled_from([1, 5, 8, 9, 0])), draw(st.integers(1, 9)))
    layout = draw(st.sampled_from(["broadcast", "per_sample", "index", "index"]))
    rows = n if layout == "per_sample" else 1 if layout == "broadcast" else draw(st.integers(0, 4))
    index = None
    if layout == "index":
        value = st.integers(-2, rows + 2) if draw(rarely(4)) else st.integers(0, max(rows - 1, 0))
        index = torch.tensor(draw(st.lists(value, min_size=n, max_size=n)), dtype=torch.int64)
    params = torch.tensor(draw(st.lists(param_row(), min_size=rows, max_size=rows)), dtype=torch.float32)
    return dict(shape=shape, params=params.view(rows, augment.NUM_PARAMS), index=index,
                dtype=draw(st.sampled_from([torch.float32, torch.float64])),
                pixel=draw(st.sampled_from([None] * 6 + NONFINITE)), seed=draw(st.integers(0, 2**16)),
                params_grad=draw(rarely(8)))


def augment_inputs(case):
    gen = torch.Generator().manual_seed(case["seed"])
    x = torch.rand(case["shape"], generator=gen, dtype=case["dtype"])
    if case["pixel"] is not None and x.numel():
        x.view(-1)[int(torch.randint(x.numel(), (1,), generator=gen))] = case["pixel"]
    return x, case["params"].clone().requires_grad_(case["params_grad"]), case["index"]


def augment_outcomes(x, params, index):
    return both(lambda backend, leaf: ops.siamese_augment(leaf, params, index, backend=backend), x, params)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=augment_case())
def test_augment_backends_agree(case):
    ext, ref = augment_outcomes(*augment_inputs(case))
    record(ext)
    assert_agree(ext, ref)


# ---------------------------------------------------------------------------------------
# class_mean_mmd

@st.composite
def mmd_case(draw):
    classes = draw(st.integers(0, 4))
    ragged = draw(st.booleans())
    hostile_classes = [0, -1, True, 2.0, np.int64(max(classes, 1)), None, classes + 1]
    if ragged:
        num_classes = draw(st.sampled_from(hostile_classes)) if draw(rarely(5)) else max(classes, 1)
    else:
        num_classes = draw(st.sampled_from(hostile_classes if draw(rarely(4)) else [None, classes]))
    rows = st.integers(0, 3) if draw(rarely(6)) else st.integers(1, 3)
    counts = (draw(rows), draw(rows)) if not ragged else (draw(st.integers(0, 9)), draw(st.integers(0, 6)))
    label_values = st.integers(-1, classes + 1) if draw(rarely(5)) else st.integers(0, max(classes, 1) - 1)
    labels = [draw(st.lists(label_values, min_size=k, max_size=k)) for k in counts] if ragged or \
        draw(rarely(10)) else None
    return dict(classes=classes, ragged=ragged, num_classes=num_classes, counts=counts, labels=labels,
                dim=draw(st.sampled_from([0, 1, 3, 7])), dtype=draw(st.sampled_from([torch.float32, torch.float64])),
                labels_dtype=draw(st.sampled_from([torch.int64] * 9 + [torch.int32])),
                poison=draw(st.sampled_from([None] * 4 + NONFINITE)), scale=draw(st.sampled_from([1.0, 100.0])),
                reduction=draw(st.sampled_from(["sum", "mean", "none"])), seed=draw(st.integers(0, 2**16)),
                real_grad=draw(rarely(15)))


def mmd_inputs(case):
    gen = torch.Generator().manual_seed(case["seed"])

    def features(rows):
        shape = (rows, case["dim"]) if case["ragged"] else (case["classes"], rows, case["dim"])
        return torch.randn(shape, generator=gen, dtype=case["dtype"]) * case["scale"]

    f_real, f_syn = features(case["counts"][0]), features(case["counts"][1])
    if case["poison"] is not None and f_real.numel():
        f_real.view(-1)[int(torch.randint(f_real.numel(), (1,), generator=gen))] = case["poison"]
    labels = [None, None] if case["labels"] is None else \
        [torch.tensor(v, dtype=torch.int64).to(case["labels_dtype"]) for v in case["labels"]]
    return f_real.requires_grad_(case["real_grad"]), f_syn, labels


def mmd_outcomes(f_real, f_syn, real_labels, syn_labels, num_classes, reduction="sum"):
    return both(lambda backend, leaf: ops.class_mean_mmd(f_real, leaf, real_labels, syn_labels, num_classes,
                                                         reduction, backend=backend), f_syn, f_real)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=mmd_case())
def test_mmd_backends_agree(case):
    f_real, f_syn, labels = mmd_inputs(case)
    ext, ref = mmd_outcomes(f_real, f_syn, *labels, case["num_classes"], case["reduction"])
    record(ext)
    assert_agree(ext, ref)


# ---------------------------------------------------------------------------------------
# The named cases: accepted alike, with the values both give

def row(**columns) -> torch.Tensor:
    values = list(augment.IDENTITY_ROW)
    for name, value in columns.items():
        values[augment.PARAM_COLUMNS.index(name)] = value
    return torch.tensor([values])


def images(*shape, pixel=None):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(1))
    if pixel is not None:
        x[0, 0, 1, 1] = pixel
    return x


ZEROS, NANS = "zeros", "nans"
AGREE = [
    pytest.param(images(2, 3, 6, 5), row(scale_w=NAN), ZEROS, id="nan-scale"),
    pytest.param(images(2, 3, 6, 5), row(angle=INF), ZEROS, id="inf-angle"),
    pytest.param(images(2, 3, 6, 5), row(shift_h=100.0), ZEROS, id="shift-beyond-image"),
    pytest.param(images(2, 3, 6, 5), row(shift_w=-1e30), ZEROS, id="huge-negative-shift"),
    pytest.param(images(2, 3, 6, 5), row(shift_h=NAN), ZEROS, id="nan-shift"),
    pytest.param(images(2, 3, 6, 5), row(cutout_h=2, cutout_w=2, cutout_size_h=1e9, cutout_size_w=40), ZEROS,
                 id="cutout-larger-than-image"),
    pytest.param(images(2, 3, 6, 5), row(cutout_h=3, cutout_w=2, cutout_size_h=-4, cutout_size_w=9), "x",
                 id="cutout-negative-size"),
    pytest.param(images(2, 3, 6, 5), row(cutout_h=1e30, cutout_w=-1e30, cutout_size_h=1e30, cutout_size_w=1e30), "x",
                 id="cutout-huge-centre"),
    pytest.param(images(2, 3, 6, 5), row(brightness=NAN, shift_h=2), NANS, id="nan-brightness"),
    pytest.param(images(2, 3, 6, 5), row(contrast=INF, scale_w=1.3), NANS, id="inf-contrast"),
    pytest.param(images(2, 3, 6, 5, pixel=NAN), row(cutout_size_h=2, cutout_size_w=2, cutout_h=2, cutout_w=2),
                 "first-nan", id="nan-pixel"),
    pytest.param(images(0, 3, 6, 5), torch.zeros(0, 13), "x", id="empty-batch"),
    pytest.param(images(2, 0, 6, 5), row(scale_w=1.2), "x", id="zero-channels"),
    pytest.param(images(2, 3, 0, 5), row(angle=0.3), "x", id="zero-height"),
]


@pytest.mark.parametrize("x, params, expected", AGREE)
def test_augment_backends_agree_on(x, params, expected):
    ext, ref = augment_outcomes(x, params, torch.zeros(x.shape[0], dtype=torch.int64))
    assert_agree(ext, ref)
    y = ext[0]
    if expected == ZEROS:
        assert torch.equal(y, torch.zeros_like(x))
    elif expected == NANS:
        assert y.isnan().all()
    elif expected == "first-nan":
        assert y[0].isnan().all() and torch.isfinite(y[1]).all()
    else:
        assert torch.equal(y, x)


MMD_AGREE = [
    pytest.param(torch.rand(0, 2, 3), torch.rand(0, 1, 3), None, None, None, 0.0, id="mmd-no-classes"),
    pytest.param(torch.rand(2, 2, 0), torch.rand(2, 1, 0), None, None, None, 0.0, id="mmd-no-features"),
    pytest.param(torch.tensor([[[NAN, 1.0]], [[1.0, 2.0]]]), torch.zeros(2, 1, 2), None, None, None, NAN,
                 id="mmd-nan-feature"),
    pytest.param(torch.tensor([[[INF, 1.0]], [[1.0, 2.0]]]), torch.zeros(2, 1, 2), None, None, None, INF,
                 id="mmd-inf-feature"),
    pytest.param(torch.ones(3, 2), torch.ones(2, 2), torch.tensor([0, 1, 1]), torch.tensor([1, 0]), np.int64(2), 0.0,
                 id="mmd-numpy-num-classes"),
]


@pytest.mark.parametrize("f_real, f_syn, real_labels, syn_labels, num_classes, expected", MMD_AGREE)
def test_mmd_backends_agree_on(f_real, f_syn, real_labels, syn_labels, num_classes, expected):
    ext, ref = mmd_outcomes(f_real, f_syn, real_labels, syn_labels, num_classes)
    assert_agree(ext, ref)
    assert torch.equal(ext[0], torch.tensor(expected)) or (math.isnan(expected) and ext[0].isnan())


def test_no_grad_mode_accepts_tensors_that_require_grad():
    """The gradient policy refuses a params / f_real that requires grad only where a gradient could
    be asked for: under torch.no_grad both backends take it, and agree."""
    x, params = images(2, 3, 6, 5), row(brightness=0.3, shift_h=1).requires_grad_()
    f_real = torch.rand(2, 3, 4, requires_grad=True)
    with torch.no_grad():
        assert torch.equal(ops.siamese_augment(x, params, backend="extension"),
                           ops.siamese_augment(x, params, backend="reference"))
        torch.testing.assert_close(ops.class_mean_mmd(f_real, f_real[:, :1], backend="extension"),
                                   ops.class_mean_mmd(f_real, f_real[:, :1], backend="reference"))


# ---------------------------------------------------------------------------------------
# The named refusals: the same class and message from both backends, before any work

def aug(*args, **kwargs):
    return lambda backend: ops.siamese_augment(*args, **kwargs, backend=backend)


def mmd(*args, **kwargs):
    return lambda backend: ops.class_mean_mmd(*args, **kwargs, backend=backend)


X, ROWS, LABELS = images(2, 3, 6, 5), row().repeat(3, 1), torch.tensor([0, 1, 1])
F2, F3 = torch.rand(2, 4), torch.rand(3, 4)
INDEX_RANGE = r"siamese_augment: index: expected values in \[0, 3\) \(rows of params\), got "
REFUSE = [  # (call(backend), error, message, checked before dispatch: neither backend reached)
    pytest.param(aug(X, ROWS, torch.tensor([0, 5])), ValueError, INDEX_RANGE + "5 at position 1", False,
                 id="augment-index-over-rows"),
    pytest.param(aug(X, ROWS, torch.tensor([-1, 0])), ValueError, INDEX_RANGE + "-1 at position 0", False,
                 id="augment-index-negative"),
    pytest.param(aug(images(2, 3, 0, 5), ROWS, torch.tensor([0, 3])), ValueError, INDEX_RANGE + "3 at position 1",
                 False, id="augment-index-over-rows-empty-images"),
    pytest.param(aug(X, torch.zeros(0, 13), torch.tensor([0, 0])), ValueError,
                 "params: expected at least one row for 2 samples, got 0", True, id="augment-no-param-rows"),
    pytest.param(aug(X, row().requires_grad_()), ValueError, r"params: requires grad, but siamese_augment gives no "
                 r"gradient for params .*; pass params\.detach\(\)", True, id="augment-params-requires-grad"),
    pytest.param(aug(X, row().long()), TypeError, "params: expected a floating-point tensor, got dtype torch.int64",
                 True, id="augment-int-params"),
    pytest.param(mmd(F3, F2, torch.tensor([0, 1, 5]), LABELS[:2], 2), ValueError,
                 r"real_labels: expected labels in \[0, 2\), got 5 at index 2", False, id="mmd-label-over-classes"),
    pytest.param(mmd(F3, F2, LABELS, torch.tensor([-1, 1]), 2), ValueError,
                 r"syn_labels: expected labels in \[0, 2\), got -1 at index 0", False, id="mmd-negative-label"),
    pytest.param(mmd(F3, F2, torch.tensor([0, 0, 0]), LABELS[:2], 2), ValueError,
                 r"real_labels: class 1 has no sample; every class in \[0, 2\) needs at least one", False,
                 id="mmd-class-without-sample"),
    pytest.param(mmd(F3[:0], F2[:0], LABELS[:0], LABELS[:0], 1), ValueError, "real_labels: class 0 has no sample",
                 False, id="mmd-no-rows"),
    pytest.param(mmd(F3, F2, LABELS, LABELS[:2], True), ValueError,
                 "num_classes: expected a positive int with 2-D features, got True", True, id="mmd-bool-num-classes"),
    pytest.param(mmd(torch.rand(2, 3, 4), torch.rand(2, 1, 4), num_classes=5), ValueError,
                 r"num_classes: expected None or 2 \(dim 0 of f_real\) with 3-D features, got 5", True,
                 id="mmd-num-classes-not-dim-0"),
    pytest.param(mmd(torch.rand(2, 3, 4), torch.rand(2, 1, 4), LABELS[:2], LABELS[:2], 2), ValueError,
                 "real_labels: expected None with class-major 3-D features", True, id="mmd-labels-with-class-major"),
    pytest.param(mmd(F3, F2, LABELS.to("meta"), LABELS[:2], 2), ValueError,
                 "real_labels: expected device cpu like the features, got meta", True, id="mmd-labels-device"),
    pytest.param(mmd(F3, F2, LABELS.int(), LABELS[:2], 2), ValueError,
                 r"real_labels: expected an int64 tensor of shape \(3,\)", True, id="mmd-int32-labels"),
    pytest.param(mmd(torch.rand(2, 3, 4, requires_grad=True), torch.rand(2, 1, 4)), ValueError,
                 r"f_real: requires grad, but class_mean_mmd gives no gradient for f_real .*; pass f_real\.detach\(\)",
                 True, id="mmd-f-real-requires-grad"),
]


@pytest.mark.parametrize("call, error, match, before_dispatch", REFUSE)
def test_backends_refuse_alike(call, error, match, before_dispatch, monkeypatch):
    def reached(*args, **kwargs):
        raise AssertionError("the input reached an op before it was refused")

    for name in ("siamese_augment", "class_mean_mmd"):  # the oracles run only after every check
        monkeypatch.setattr(reference, name, reached)
    if before_dispatch:
        monkeypatch.setattr(ops, "_use_reference", reached)
    refusals = []
    for backend in ("extension", "reference"):
        with pytest.raises(error, match=match) as info:
            call(backend)
        refusals.append((type(info.value), str(info.value)))
    assert refusals[0] == refusals[1]
    assert "\n" not in refusals[0][1], "the message must be one line"


# ---------------------------------------------------------------------------------------
# torch.compile: the value checks stay out of the compiled reference path; the kernels still check

def test_compiled_reference_path_skips_value_checks():
    x, params = images(4, 3, 6, 5), torch.cat([row(shift_h=1), row(flip=1.0)])
    index = torch.tensor([0, 1, 1, 0])
    labels = torch.tensor([0, 1, 1, 0])
    f_real, f_syn = torch.rand(4, 5), torch.rand(4, 5, requires_grad=True)

    def loss(x, f_syn):
        y = ops.siamese_augment(x, params, index, backend="reference")
        return y.sum() + ops.class_mean_mmd(f_real, f_syn, labels, labels, 2, backend="reference")

    compiled = torch.compile(loss, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x, f_syn), loss(x, f_syn))


def test_compiled_extension_path_checks_index_values():
    x, params = images(2, 3, 6, 5), torch.cat([row(), row(flip=1.0)])
    compiled = torch.compile(lambda x, i: ops.siamese_augment(x, params, i, backend="extension").sum(),
                             fullgraph=True, backend="aot_eager")
    assert torch.isfinite(compiled(x, torch.tensor([0, 1])))
    with pytest.raises(ValueError, match=r"index: expected values in \[0, 2\) \(rows of params\), got 5"):
        compiled(x, torch.tensor([0, 5]))


# ---------------------------------------------------------------------------------------
# docs/HOSTILE_INPUTS.md, "Backend agreement": every row is a case here, every case a row

def doc_ids(section: str) -> set[str]:
    """The ids of the tables with an "id" column in ``section`` of docs/HOSTILE_INPUTS.md
    (a cell "a / b" holds two)."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "HOSTILE_INPUTS.md").read_text()
    part = text.split(f"\n## {section}", 1)[1].split("\n## ", 1)[0]
    ids = set()
    for table in re.findall(r"^\| id \|.*\n\|[-|]+\n((?:\|.*\n)+)", part, re.M):
        ids |= {i for row in re.findall(r"^\| ([^|]+?) \|", table, re.M) for i in row.split(" / ")}
    return ids


def test_doc_rows_are_the_cases():
    cases = {p.id for p in REFUSE + AGREE + MMD_AGREE}
    assert doc_ids("Backend agreement") == cases
