"""dance_ext::class_mean_mmd and its backward: parity with reference.py, gradients, opcheck,
torch.compile, argument errors; CUDA parity where a GPU is present."""
import pytest
import torch
from hypothesis import given, settings, strategies as st

from dance_ext import extension, ops, reference

pytestmark = pytest.mark.skipif(not extension.has_kernel("class_mean_mmd", "cpu"),
                                reason=f"dance_ext extension not built ({extension.build_info()})")
requires_cuda = pytest.mark.skipif(
    not (torch.cuda.is_available() and extension.has_kernel("class_mean_mmd", "cuda")),
    reason="needs a CUDA device and the CUDA kernels of dance_ext")

TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-12, atol=1e-12)}
REDUCTIONS = ("sum", "mean", "none")
op = torch.ops.dance_ext.class_mean_mmd
op_backward = torch.ops.dance_ext.class_mean_mmd_backward


def ragged_labels(num_classes: int, extra: int, gen: torch.Generator) -> torch.Tensor:
    """Every class at least once, plus `extra` random rows, shuffled."""
    labels = torch.cat([torch.arange(num_classes), torch.randint(0, num_classes, (extra,), generator=gen)])
    return labels[torch.randperm(labels.numel(), generator=gen)]


def check_parity(f_real, f_syn, real_labels=None, syn_labels=None, num_classes=None, reduction="sum"):
    tol = TOL[f_syn.dtype]
    x = f_syn.clone().requires_grad_()
    y = f_syn.clone().requires_grad_()
    got = ops.class_mean_mmd(f_real, x, real_labels, syn_labels, num_classes, reduction, backend="extension")
    want = reference.class_mean_mmd(f_real, y, real_labels, syn_labels, num_classes, reduction)
    torch.testing.assert_close(got, want, **tol)
    weights = torch.randn(want.shape, dtype=want.dtype)  # a non-uniform upstream gradient
    (got * weights).sum().backward()
    (want * weights).sum().backward()
    torch.testing.assert_close(x.grad, y.grad, **tol)


@settings(max_examples=25, deadline=None)
@given(C=st.integers(1, 12), n_real=st.integers(1, 6), n_syn=st.integers(1, 4), D=st.integers(1, 300),
       dtype=st.sampled_from([torch.float32, torch.float64]), reduction=st.sampled_from(REDUCTIONS),
       seed=st.integers(0, 2**16))
def test_class_major_matches_reference(C, n_real, n_syn, D, dtype, reduction, seed):
    gen = torch.Generator().manual_seed(seed)
    f_real = torch.randn(C, n_real, D, generator=gen, dtype=dtype)
    f_syn = torch.randn(C, n_syn, D, generator=gen, dtype=dtype)
    check_parity(f_real, f_syn, reduction=reduction)


@settings(max_examples=25, deadline=None)
@given(C=st.integers(1, 12), extra_real=st.integers(0, 30), extra_syn=st.integers(0, 10), D=st.integers(1, 300),
       dtype=st.sampled_from([torch.float32, torch.float64]), reduction=st.sampled_from(REDUCTIONS),
       seed=st.integers(0, 2**16))
def test_ragged_matches_reference(C, extra_real, extra_syn, D, dtype, reduction, seed):
    gen = torch.Generator().manual_seed(seed)
    real_labels = ragged_labels(C, extra_real, gen)
    syn_labels = ragged_labels(C, extra_syn, gen)
    f_real = torch.randn(real_labels.numel(), D, generator=gen, dtype=dtype)
    f_syn = torch.randn(syn_labels.numel(), D, generator=gen, dtype=dtype)
    check_parity(f_real, f_syn, real_labels, syn_labels, C, reduction)


@pytest.mark.parametrize("C,n_real,n_syn,D", [(1, 3, 1, 1), (1000, 2, 1, 8), (3, 2, 2, 8192), (10, 256, 10, 2048)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_extreme_shapes_match_reference(C, n_real, n_syn, D, dtype):
    gen = torch.Generator().manual_seed(C * D)
    f_real = torch.randn(C, n_real, D, generator=gen, dtype=dtype)
    f_syn = torch.randn(C, n_syn, D, generator=gen, dtype=dtype)
    check_parity(f_real, f_syn, reduction="none")


def test_outputs_are_per_class_norm_and_mean_difference():
    gen = torch.Generator().manual_seed(1)
    f_real, f_syn = torch.randn(4, 5, 7, generator=gen), torch.randn(4, 3, 7, generator=gen)
    per_class, diff = op(f_real, f_syn, None, None, 4)
    torch.testing.assert_close(diff, f_syn.mean(1) - f_real.mean(1))
    torch.testing.assert_close(per_class, diff.pow(2).sum(1))


def test_non_contiguous_inputs():
    gen = torch.Generator().manual_seed(2)
    f_real = torch.randn(9, 3, 6, generator=gen).transpose(0, 2)  # (6, 3, 9), non-contiguous
    f_syn = torch.randn(9, 2, 6, generator=gen).transpose(0, 2)
    check_parity(f_real, f_syn, reduction="none")


def test_deterministic_and_independent_of_threads():
    gen = torch.Generator().manual_seed(3)
    labels = ragged_labels(7, 200, gen)
    f_real = torch.randn(labels.numel(), 600, generator=gen)
    f_syn = torch.randn(7, 4, 600, generator=gen)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = op(f_real, f_syn.reshape(28, 600), labels, torch.arange(7).repeat_interleave(4), 7)
    finally:
        torch.set_num_threads(threads)
    for _ in range(2):
        again = op(f_real, f_syn.reshape(28, 600), labels, torch.arange(7).repeat_interleave(4), 7)
        assert all(torch.equal(a, b) for a, b in zip(one, again))


def test_ragged_equals_class_major_layout():
    gen = torch.Generator().manual_seed(4)
    f_real, f_syn = torch.randn(5, 4, 10, generator=gen, dtype=torch.float64), torch.randn(5, 2, 10, generator=gen,
                                                                                          dtype=torch.float64)
    major = op(f_real, f_syn, None, None, 5)
    ragged = op(f_real.reshape(20, 10), f_syn.reshape(10, 10), torch.arange(5).repeat_interleave(4),
                torch.arange(5).repeat_interleave(2), 5)
    for a, b in zip(major, ragged):
        torch.testing.assert_close(a, b, rtol=1e-14, atol=1e-14)


def _gradcheck_inputs(ragged: bool):
    gen = torch.Generator().manual_seed(5)
    kw = dict(generator=gen, dtype=torch.float64)
    if ragged:
        real_labels, syn_labels = torch.tensor([0, 1, 2, 0, 2, 2, 1]), torch.tensor([2, 0, 1, 1, 0])
        return torch.randn(7, 4, **kw), torch.randn(5, 4, **kw), real_labels, syn_labels, 3
    return torch.randn(3, 5, 4, **kw), torch.randn(3, 2, 4, **kw), None, None, 3


@pytest.mark.parametrize("ragged", [False, True])
def test_gradcheck_and_gradgradcheck(ragged):
    f_real, f_syn, real_labels, syn_labels, classes = _gradcheck_inputs(ragged)

    def both_outputs(x):  # per_class and diff: diff's gradient in f_syn is checked too
        return op(f_real, x, real_labels, syn_labels, classes)

    def diff_only(x):
        return op(f_real, x, real_labels, syn_labels, classes)[1]

    x = f_syn.requires_grad_()
    assert torch.autograd.gradcheck(both_outputs, (x,))
    assert torch.autograd.gradgradcheck(both_outputs, (x,))
    assert torch.autograd.gradcheck(diff_only, (x,))


@pytest.mark.parametrize("ragged", [False, True])
def test_backward_op_gradcheck(ragged):
    _, f_syn, _, syn_labels, classes = _gradcheck_inputs(ragged)
    gen = torch.Generator().manual_seed(6)
    grad = torch.randn(classes, dtype=torch.float64, generator=gen, requires_grad=True)
    diff = torch.randn(classes, f_syn.shape[-1], dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda g, d: op_backward(g, d, f_syn, syn_labels), (grad, diff))


@pytest.mark.parametrize("ragged", [False, True])
def test_opcheck(ragged):
    f_real, f_syn, real_labels, syn_labels, classes = _gradcheck_inputs(ragged)
    torch.library.opcheck(op, (f_real, f_syn.requires_grad_(), real_labels, syn_labels, classes))
    grad = torch.randn(classes, dtype=torch.float64, requires_grad=True)
    diff = torch.randn(classes, f_syn.shape[-1], dtype=torch.float64, requires_grad=True)
    torch.library.opcheck(op_backward, (grad, diff, f_syn.detach(), syn_labels))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_torch_compile_fullgraph(reduction):
    gen = torch.Generator().manual_seed(7)
    f_real, f_syn = torch.randn(4, 6, 16, generator=gen), torch.randn(4, 3, 16, generator=gen)

    @torch.compile(fullgraph=True, backend="aot_eager")
    def loss(a, b):
        return ops.class_mean_mmd(a, torch.tanh(b), reduction=reduction).sum()

    x, y = f_syn.clone().requires_grad_(), f_syn.clone().requires_grad_()
    got = loss(f_real, x)
    want = reference.class_mean_mmd(f_real, torch.tanh(y), reduction=reduction).sum()
    got.backward()
    want.backward()
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(x.grad, y.grad)


def test_torch_compile_inductor_ragged_op():
    gen = torch.Generator().manual_seed(8)
    labels = ragged_labels(3, 5, gen)
    f_real, f_syn = torch.randn(8, 5, generator=gen), torch.randn(8, 5, generator=gen)

    @torch.compile(fullgraph=True)
    def loss(a, b):
        return op(a, b * 2, labels, labels, 3)[0].sum()

    x, y = f_syn.clone().requires_grad_(), f_syn.clone().requires_grad_()
    got = loss(f_real, x)
    want = reference.class_mean_mmd(f_real, y * 2, labels, labels, 3)
    got.backward()
    want.backward()
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(x.grad, y.grad)


# --- errors: the kernels' own checks (called directly) and the Python face ---
# label values are ValueErrors (as on the reference path, ops.py); everything else RuntimeErrors

def kernel_error(match: str):
    return ValueError if "expected labels in" in match or "has no sample" in match else RuntimeError


@pytest.mark.parametrize("args,match", [
    ((torch.randn(2, 3, 4), torch.randn(2, 3, 5), None, None, 2), "f_syn: expected feature dimension D=4"),
    ((torch.randn(2, 3, 4), torch.randn(3, 3, 4), None, None, 2), "f_syn: expected C=2"),
    ((torch.randn(2, 3, 4), torch.randn(2, 0, 4), None, None, 2), "every class needs at least one sample"),
    ((torch.randn(2, 3, 4), torch.randn(2, 3, 4), None, None, 5), "num_classes: expected 2"),
    ((torch.randn(2, 3, 4), torch.randn(2, 3, 4, dtype=torch.float64), None, None, 2), "f_syn: expected dtype"),
    ((torch.randn(2, 3, 4).half(), torch.randn(2, 3, 4).half(), None, None, 2), "f_real: expected float32 or float64"),
    ((torch.randn(2, 3, 4), torch.randn(3, 4), None, None, 2), "f_syn: expected 3 dims"),
    ((torch.randn(2, 3, 4), torch.randn(2, 3, 4), torch.zeros(2, dtype=torch.long), None, 2), "real_labels: expected None"),
    ((torch.randn(3, 4), torch.randn(2, 4), torch.tensor([0, 1, 2]), torch.tensor([0, 1]), 2),
     r"real_labels: expected labels in \[0, 2\), got 2"),
    ((torch.randn(3, 4), torch.randn(2, 4), torch.tensor([0, 1, 1]), torch.tensor([-1, 1]), 2),
     r"syn_labels: expected labels in \[0, 2\), got -1"),
    ((torch.randn(3, 4), torch.randn(2, 4), torch.tensor([0, 0, 0]), torch.tensor([0, 1]), 2),
     "real_labels: class 1 has no sample"),
    ((torch.randn(3, 4), torch.randn(2, 4), torch.tensor([0, 1, 1]), torch.tensor([0, 1, 1]), 2),
     "syn_labels: expected an int64 vector of length 2"),
    ((torch.randn(3, 4), torch.randn(2, 4), torch.tensor([0, 1, 1]), torch.tensor([0., 1.]), 2),
     "syn_labels: expected an int64 vector"),
    ((torch.randn(3, 4), torch.randn(2, 4), None, torch.tensor([0, 1]), 2), "real_labels: required"),
    ((torch.randn(3, 4), torch.randn(2, 4), torch.tensor([0, 1, 1]), torch.tensor([0, 1]), 0),
     "num_classes: expected a positive int"),
])
def test_kernel_errors(args, match):
    with pytest.raises(kernel_error(match), match=match):
        op(*args)


@pytest.mark.parametrize("args,match", [
    ((torch.randn(3), torch.randn(2, 4), torch.randn(2, 3, 4), None), r"grad_per_class: expected shape \(2,\)"),
    ((torch.randn(2).double(), torch.randn(2, 4), torch.randn(2, 3, 4), None), "grad_per_class: expected dtype"),
    ((torch.randn(2), torch.randn(2, 4), torch.randn(2, 3, 5), None), "f_syn: expected feature dimension D=4"),
    ((torch.randn(2), torch.randn(2, 4), torch.randn(3, 3, 4), None), "f_syn: expected C=2"),
    ((torch.randn(2), torch.randn(2, 4), torch.randn(3, 4), torch.tensor([0, 1, 2])),
     r"syn_labels: expected labels in \[0, 2\)"),
    ((torch.randn(2), torch.randn(2, 4), torch.randn(3, 4), None), "syn_labels: required"),
])
def test_backward_kernel_errors(args, match):
    with pytest.raises(kernel_error(match), match=match):
        op_backward(*args)


@pytest.mark.parametrize("args,match", [
    ((torch.randn(2, 3, 4), torch.randn(2, 3, 5)), "f_syn: expected feature dimension D=4"),
    ((torch.randn(2, 0, 4), torch.randn(2, 3, 4)), "every class needs at least one sample"),
    ((torch.randn(3, 4), torch.randn(2, 4), torch.tensor([0, 1, 5]), torch.tensor([0, 1]), 2),
     r"real_labels: expected labels in \[0, 2\)"),
    ((torch.randn(3, 4), torch.randn(2, 4), torch.tensor([0, 0, 0]), torch.tensor([0, 1]), 2),
     "real_labels: (class 1 has no sample; )?every class"),
])
@pytest.mark.parametrize("backend", ["extension", "reference"])
def test_python_face_errors(args, match, backend):
    # shape errors come from the Python face; label values from the kernel (TORCH_CHECK_VALUE) or,
    # on the reference path, from the Python face in the same words: ValueError either way
    with pytest.raises(ValueError, match=match):
        ops.class_mean_mmd(*args, backend=backend)


# --- CUDA: same kernels' math on the GPU against the CPU kernel and the reference ---

@requires_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("C,n_real,n_syn,D", [(1, 1, 1, 1), (10, 256, 10, 2048), (1000, 3, 2, 40), (2, 5, 3, 8192)])
def test_cuda_class_major_matches_cpu(C, n_real, n_syn, D, dtype):
    gen = torch.Generator().manual_seed(C + D)
    f_real = torch.randn(C, n_real, D, generator=gen, dtype=dtype)
    f_syn = torch.randn(C, n_syn, D, generator=gen, dtype=dtype)
    cpu = op(f_real, f_syn, None, None, C)
    gpu = op(f_real.cuda(), f_syn.cuda(), None, None, C)
    for a, b in zip(cpu, gpu):
        torch.testing.assert_close(b.cpu(), a, **TOL[dtype])
    grad = torch.randn(C, generator=gen, dtype=dtype)
    torch.testing.assert_close(op_backward(grad.cuda(), gpu[1], f_syn.cuda(), None).cpu(),
                               op_backward(grad, cpu[1], f_syn, None), **TOL[dtype])


@requires_cuda
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cuda_ragged_matches_reference(reduction):
    gen = torch.Generator().manual_seed(9)
    real_labels, syn_labels = ragged_labels(6, 40, gen), ragged_labels(6, 7, gen)
    f_real = torch.randn(real_labels.numel(), 300, generator=gen, dtype=torch.float64)
    f_syn = torch.randn(syn_labels.numel(), 300, generator=gen, dtype=torch.float64)
    x = f_syn.cuda().requires_grad_()
    y = f_syn.clone().requires_grad_()
    got = ops.class_mean_mmd(f_real.cuda(), x, real_labels.cuda(), syn_labels.cuda(), 6, reduction,
                             backend="extension")
    want = reference.class_mean_mmd(f_real, y, real_labels, syn_labels, 6, reduction)
    torch.testing.assert_close(got.cpu(), want)
    got.sum().backward()
    want.sum().backward()
    torch.testing.assert_close(x.grad.cpu(), y.grad)


@requires_cuda
def test_cuda_gradcheck_opcheck_and_errors():
    f_real, f_syn, real_labels, syn_labels, classes = _gradcheck_inputs(True)
    f_real, f_syn = f_real.cuda(), f_syn.cuda().requires_grad_()
    real_labels, syn_labels = real_labels.cuda(), syn_labels.cuda()
    assert torch.autograd.gradcheck(lambda x: op(f_real, x, real_labels, syn_labels, classes), (f_syn,))
    torch.library.opcheck(op, (f_real, f_syn, real_labels, syn_labels, classes))
    with pytest.raises(ValueError, match=r"real_labels: expected labels in \[0, 3\)"):
        op(f_real, f_syn, real_labels + 1, syn_labels, classes)
    with pytest.raises(RuntimeError, match="f_real: expected device"):
        op(f_real.cpu(), f_syn, real_labels, syn_labels, classes)
    a, b = torch.randn(3, 4, 5, device="cuda"), torch.randn(3, 2, 5, device="cuda")
    first = op(a, b, None, None, 3)
    assert all(torch.equal(x, y) for x, y in zip(first, op(a, b, None, None, 3)))
