"""class_mean_mmd forward + backward (gradient w.r.t. f_syn), D = 2048, IPC 10.

Ladder: a Python loop over classes (the research scripts), the vectorized
`view(C, n, D).mean(1)` torch ops, torch.compile of those, and the dance_ext kernel.
n_real = 256 real rows per class for C = 10 and 100; 32 at C = 1000 to keep the real
features at 262 MB (256 would need 2.1 GB). Run:
    python -m pytest benchmarks/bench_mmd.py --benchmark-only
"""
import pytest
import torch

from conftest import save_result
from dance_ext import extension, ops

D, N_SYN = 2048, 10
N_REAL = {10: 256, 100: 256, 1000: 32}
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]


def loop_loss(f_real, f_syn):
    # unbind, not f_syn[c]: indexing's backward would zero-fill a full-size gradient per class
    loss = f_syn.new_zeros(())
    for real_c, syn_c in zip(f_real.unbind(0), f_syn.unbind(0)):
        loss = loss + ((real_c.mean(0) - syn_c.mean(0)) ** 2).sum()
    return loss


def vectorized_loss(f_real, f_syn):
    C = f_real.shape[0]
    return (f_real.view(C, -1, D).mean(1) - f_syn.view(C, -1, D).mean(1)).pow(2).sum()


compiled_loss = torch.compile(vectorized_loss, fullgraph=True, dynamic=False)


def kernel_loss(f_real, f_syn):
    return ops.class_mean_mmd(f_real, f_syn, backend="extension")


IMPLS = {"loop": loop_loss, "vectorized": vectorized_loss, "compiled": compiled_loss, "kernel": kernel_loss}


_results: dict = {}


@pytest.fixture(scope="module", autouse=True)
def _save_results():
    """One record per device: seconds per forward+backward and the kernel's speed-ups."""
    yield
    for device, rows in _results.items():
        for times in rows.values():
            if "kernel" in times:
                times["kernel_speedup"] = {k: times[k] / times["kernel"] for k in IMPLS if k != "kernel" and k in times}
        save_result("mmd", {"device": device, "D": D, "n_syn": N_SYN, "seconds_per_call": rows})


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("classes", sorted(N_REAL))
@pytest.mark.parametrize("impl", list(IMPLS))
def test_class_mean_mmd_forward_backward(benchmark, impl, classes, device):
    if impl == "kernel" and not extension.has_kernel("class_mean_mmd", device):
        pytest.skip(f"no dance_ext {device} kernel in this build")
    gen = torch.Generator().manual_seed(0)
    f_real = torch.randn(classes, N_REAL[classes], D, generator=gen).to(device)
    f_syn = torch.randn(classes, N_SYN, D, generator=gen).to(device).requires_grad_()
    loss_fn = IMPLS[impl]

    def step():
        (grad,) = torch.autograd.grad(loss_fn(f_real, f_syn), f_syn)
        if device == "cuda":
            torch.cuda.synchronize()
        return grad

    expected = torch.autograd.grad(vectorized_loss(f_real, f_syn), f_syn)[0]
    torch.testing.assert_close(step(), expected, rtol=1e-4, atol=1e-6)  # also warms up (compiles)
    benchmark.extra_info.update(impl=impl, classes=classes, n_real=N_REAL[classes], n_syn=N_SYN, D=D)
    benchmark.pedantic(step, rounds=5 if classes < 1000 else 3, warmup_rounds=1)
    if benchmark.stats is None:  # --benchmark-disable: the step ran once as a check
        return
    stats = benchmark.stats.stats
    _results.setdefault(device, {}).setdefault(f"C{classes}", {"n_real": N_REAL[classes]})[impl] = stats.mean
