"""Scale-out on torch.distributed: class slices, and multi-process runs (torchrun, gloo)
that equal the one-process run bit for bit, including per-rank checkpoints and resume."""
import os
import subprocess
import sys

import pytest
import torch

import dance_ext
from dance_ext.distributed import class_slices

pytestmark = pytest.mark.usefixtures("single_thread")

TINY = dict(ipc=2, preset="quick", progress=False)


@pytest.mark.parametrize("num_classes,world,block", [(10, 1, 1), (10, 2, 1), (10, 3, 1), (10, 4, 1), (7, 2, 3),
                                                     (100, 8, 1), (3, 3, 1), (10, 2, 10)])
def test_class_slices_are_contiguous_balanced_and_block_aligned(num_classes, world, block):
    slices = class_slices(num_classes, world, block)
    assert len(slices) == world and slices[0].start == 0 and slices[-1].stop <= num_classes
    assert all(a.stop == b.start for a, b in zip(slices, slices[1:]))
    assert sum(len(s) for s in slices) == num_classes
    assert all(s.start % block == 0 for s in slices)
    blocks = [-(-len(s) // block) for s in slices]
    assert max(blocks) - min(blocks) <= 1


def test_class_slices_leave_ranks_empty_when_blocks_are_too_few():
    assert [len(s) for s in class_slices(10, 2, 10)] == [10, 0]


@pytest.fixture(scope="module")
def experts(tmp_path_factory):
    out = tmp_path_factory.mktemp("experts") / "store"
    dance_ext.pretrain_experts("digits", num=3, epochs=2, out=out, width=32, progress=False)
    return out


def torchrun(world: int, out, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """`torchrun -m dance_ext condense --distributed` with one thread per rank."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={world}",
           "-m", "dance_ext", "condense", "--distributed", "--no-progress", "--eval-runs", "0",
           "--ipc", "2", "--out", str(out), *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_two_processes_equal_one_bit_for_bit_dm(tmp_path):
    torchrun(2, tmp_path / "out", "--method", "dm", "--iterations", "6")
    gathered = dance_ext.load(tmp_path / "out")
    alone = dance_ext.condense("digits", method="dm", iterations=6, class_block=1, **TINY)
    assert gathered.meta["world_size"] == 2 and gathered.meta["class_block_used"] == 1
    assert torch.equal(gathered.images, alone.images) and torch.equal(gathered.labels, alone.labels)
    # losses are each rank's share, summed at the end: equal up to the order of the additions
    assert [r["iteration"] for r in gathered.history] == [r["iteration"] for r in alone.history]
    assert gathered.history[-1]["inner_loss"] == pytest.approx(alone.history[-1]["inner_loss"], rel=1e-5)


def test_three_processes_with_classes_not_divisible(tmp_path):
    torchrun(3, tmp_path / "out", "--method", "dm", "--iterations", "4")
    alone = dance_ext.condense("digits", method="dm", iterations=4, class_block=1, **TINY)
    assert torch.equal(dance_ext.load(tmp_path / "out").images, alone.images)


def test_two_processes_dance_with_per_rank_checkpoints_and_resume(tmp_path, experts):
    common = ["--method", "dance", "--experts", str(experts), "--checkpoint-dir", str(tmp_path / "ckpt")]
    torchrun(2, tmp_path / "first", *common, "--iterations", "3")
    names = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert names == ["checkpoint-rank0-of-2.pt", "checkpoint-rank1-of-2.pt"]
    torchrun(2, tmp_path / "out", *common, "--iterations", "6", "--resume")
    alone = dance_ext.condense("digits", method="dance", experts=experts, iterations=6, class_block=1, **TINY)
    assert torch.equal(dance_ext.load(tmp_path / "out").images, alone.images)
    # a checkpoint of two processes cannot be continued by one
    with pytest.raises(ValueError, match="another world size"):
        dance_ext.condense("digits", method="dance", experts=experts, iterations=8, class_block=1,
                           checkpoint_dir=tmp_path / "ckpt", resume=True, **TINY)


def test_distributed_without_torchrun_is_a_clear_error(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="distributed: expected a torchrun launch"):
        dance_ext.condense("digits", method="dm", iterations=1, distributed=True, **TINY)


def test_too_many_processes_for_the_class_groups(tmp_path):
    proc = torchrun(2, tmp_path / "out", "--method", "dm", "--iterations", "1", "--set", "class_block=10",
                    check=False)
    assert proc.returncode != 0 and "use at most 1 processes or a smaller class_block" in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("method", ["dm", "dance"])
def test_seed_fixes_everything(method, experts):
    kwargs = dict(method=method, iterations=3, **TINY, **({"experts": experts} if method == "dance" else {}))
    a = dance_ext.condense("digits", seed=5, **kwargs)
    b = dance_ext.condense("digits", seed=5, **kwargs)
    c = dance_ext.condense("digits", seed=6, **kwargs)
    assert torch.equal(a.images, b.images) and a.history == b.history
    assert not torch.equal(a.images, c.images)


def test_matrix_products_do_not_depend_on_buffer_alignment():
    """DANCE's expert and the evaluation networks end in Linear layers (MKL): dance_ext's
    import sets MKL_CBWR so that differently aligned copies of a batch round the same."""
    gen = torch.Generator().manual_seed(0)
    weight, x = torch.randn(10, 288, generator=gen), torch.randn(20, 288, generator=gen)
    want = torch.nn.functional.linear(x, weight)
    for offset in range(1, 16):
        shifted = torch.empty(x.numel() + offset)[offset:].view_as(x).copy_(x)
        assert torch.equal(torch.nn.functional.linear(shifted, weight), want)
