"""Results you can trust: checkpoints bound to what made them, one writer per folder (real
processes), folders written whole or not at all (faults injected), untrusted metadata,
divergence caught. docs/HOSTILE_INPUTS.md ("Faults") describes what the user sees."""
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

import dance_ext
from dance_ext import folders
from dance_ext.data import load_dataset
from dance_ext.results import CondenseResult

pytestmark = pytest.mark.usefixtures("single_thread")
TINY = dict(ipc=1, method="dm", preset="quick", width=8, depth=2, batch_real=16, log_every=2, progress=False)
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def checkpointed(tmp_path, data="digits", **kwargs):
    ckpt = tmp_path / "ckpt"
    dance_ext.condense(data, iterations=4, checkpoint_dir=ckpt, **{**TINY, **kwargs})
    return ckpt


# ---- checkpoints are bound to their inputs ------------------------------------------------
def test_resume_refuses_other_pixels_of_the_same_shape(tmp_path, digits):
    ckpt = checkpointed(tmp_path, data=digits)
    images = digits.images.clone()
    images[0, 0, 0, 0] = 1 - images[0, 0, 0, 0]
    with pytest.raises(ValueError, match="checkpoint_dir: .* other settings, data"):
        dance_ext.condense((images, digits.labels), iterations=6, checkpoint_dir=ckpt, resume=True,
                           **{**TINY, "preset": "quick"})


def test_resume_refuses_a_flipped_byte(tmp_path):
    ckpt = checkpointed(tmp_path)
    file = ckpt / "checkpoint.pt"
    raw = bytearray(file.read_bytes())
    # a byte inside the stored tensors (zip entries are stored uncompressed by torch.save)
    position = raw.find(b"syn") + 2000
    raw[position] ^= 0x01
    file.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="checkpoint_dir: .*(corrupt|not a readable checkpoint)"):
        dance_ext.condense("digits", iterations=6, checkpoint_dir=ckpt, resume=True, **TINY)


def test_resume_refuses_a_target_below_the_checkpoint(tmp_path):
    ckpt = checkpointed(tmp_path)
    with pytest.raises(ValueError, match="iterations: the checkpoint .* is at iteration 4, past the 2 asked"):
        dance_ext.condense("digits", iterations=2, checkpoint_dir=ckpt, resume=True, **TINY)


def test_resume_without_checkpoint_dir_is_an_error():
    with pytest.raises(ValueError, match="resume: needs checkpoint_dir"):
        dance_ext.condense("digits", iterations=2, resume=True, **TINY)


def test_resume_refuses_another_expert_store(tmp_path, digits):
    stores = [dance_ext.pretrain_experts(digits, num=1, epochs=2, out=tmp_path / f"e{s}", width=8, depth=2,
                                         seed=s, progress=False) for s in (0, 1)]
    dance = dict(TINY, method="dance", experts=stores[0].path, num_experts=1)
    ckpt = tmp_path / "ckpt"
    dance_ext.condense(digits, iterations=2, checkpoint_dir=ckpt, **dance)
    with pytest.raises(ValueError, match="other settings, data, experts"):
        dance_ext.condense(digits, iterations=4, checkpoint_dir=ckpt, resume=True, **{**dance, "experts": stores[1].path})


# ---- one writer per folder: real processes -------------------------------------------------
HOLDER = textwrap.dedent("""
    import sys, time
    from dance_ext.folders import DirectoryLock
    with DirectoryLock(sys.argv[1], "checkpoint_dir"):
        print("held", flush=True)
        time.sleep(60)
""")


def hold_in_subprocess(folder):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_on_a_held_checkpoint_dir_is_refused_naming_the_holder(tmp_path):
    folder = tmp_path / "ckpt"
    proc = hold_in_subprocess(folder)
    try:
        with pytest.raises(ValueError, match=rf"checkpoint_dir: .* in use by another dance_ext run \(pid {proc.pid}\)"):
            dance_ext.condense("digits", iterations=2, checkpoint_dir=folder, **TINY)
    finally:
        proc.kill()
        proc.wait()
    # the holder died (kill -9): its lock is gone with it, nothing to clean up by hand
    dance_ext.condense("digits", iterations=2, checkpoint_dir=folder, **TINY)
    assert (folder / "checkpoint.pt").exists()


def test_a_save_into_a_held_output_folder_is_refused(tmp_path):
    res = dance_ext.condense("digits", iterations=2, **TINY)
    proc = hold_in_subprocess(tmp_path / "out")
    try:
        with pytest.raises(ValueError, match="directory: .* in use by another dance_ext run"):
            res.save(tmp_path / "out")
    finally:
        proc.kill()
        proc.wait()


SAVER = textwrap.dedent("""
    import sys, torch
    from dance_ext.results import CondenseResult
    value = float(sys.argv[2])
    res = CondenseResult(torch.full((2, 1, 8, 8), value), torch.tensor([0, 1]),
                         {"num_classes": 2, "factor": 1, "who": value})
    for _ in range(int(sys.argv[3])):
        while True:
            try:
                res.save(sys.argv[1])
                break
            except ValueError as exc:  # the other writer holds the folder: try again
                if "in use by another dance_ext run" not in str(exc):
                    raise
""")


def test_concurrent_saves_never_show_a_mixed_result(tmp_path):
    out = tmp_path / "out"
    writers = [subprocess.Popen([sys.executable, "-c", SAVER, str(out), v, "25"], cwd=ROOT) for v in ("0.25", "0.75")]
    seen = set()
    while any(w.poll() is None for w in writers):
        try:
            res = CondenseResult.load(out)
        except FileNotFoundError:
            continue  # before the first save, or inside a two-rename swap
        # syn.pt binds metrics.json: the images and the meta of one load come from one save
        assert float(res.images[0, 0, 0, 0]) == res.meta["who"]
        seen.add(res.meta["who"])
    assert all(w.returncode == 0 for w in writers)
    assert seen, "the reader never saw a result"
    assert not [p for p in tmp_path.iterdir() if folders.STAGING_MARK in p.name]


def test_a_probe_taken_by_another_writers_swap_still_proves_the_folder_writable(tmp_path, monkeypatch):
    real_mkstemp = folders.tempfile.mkstemp

    def swapped_away(*args, **kwargs):  # the lock holder's swap moves the probe out right away
        fd, name = real_mkstemp(*args, **kwargs)
        os.unlink(name)
        return fd, name
    monkeypatch.setattr(folders.tempfile, "mkstemp", swapped_away)
    folders.check_output_dir(tmp_path, "out")


def test_a_replace_leaves_probes_behind_and_lets_vanished_entries_go(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    for name in ("notes.txt", "vanishing.txt", f"{folders.PROBE_PREFIX}x1"):
        (out / name).write_text(name)
    real_rename = os.rename

    def racing_rename(src, dst):  # another process removes this file between listing and moving
        if Path(src).name == "vanishing.txt":
            os.unlink(src)
        real_rename(src, dst)
    monkeypatch.setattr(folders.os, "rename", racing_rename)
    folders.replace_folder(out, {"a.txt": b"new"})
    assert sorted(p.name for p in out.iterdir()) == ["a.txt", "notes.txt"]
    assert not [p for p in tmp_path.iterdir() if folders.STAGING_MARK in p.name]


# ---- folders written whole or not at all ----------------------------------------------------
def test_a_save_that_fails_half_way_keeps_the_old_result(tmp_path, monkeypatch):
    out = tmp_path / "out"
    old = dance_ext.condense("digits", iterations=2, **TINY)
    old.save(out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    new = dance_ext.condense("digits", iterations=2, seed=1, **TINY)
    real_fsync, calls = os.fsync, []

    def disk_full(fd):
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_fsync(fd)
    monkeypatch.setattr(folders.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        new.save(out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.staging")]


def test_temp_files_of_an_interrupted_write_are_removed_by_the_next_run(tmp_path):
    out = tmp_path / "out"
    dance_ext.condense("digits", iterations=2, **TINY).save(out)
    (out / ".syn.pt.k1ll3d.tmp").write_bytes(b"x" * 1000)
    (tmp_path / f".out{folders.STAGING_MARK}abc").mkdir()
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / ".checkpoint.pt.k1ll3d.tmp").write_bytes(b"x")
    dance_ext.condense("digits", iterations=2, seed=1, **TINY).save(out)
    dance_ext.condense("digits", iterations=2, checkpoint_dir=ckpt, **TINY)
    assert sorted(p.name for p in out.iterdir()) == ["grid.png", "metrics.json", "syn.pt"]
    assert not (tmp_path / f".out{folders.STAGING_MARK}abc").exists()
    assert [p.name for p in ckpt.iterdir()] == ["checkpoint.pt"]


def test_user_files_in_an_output_folder_survive_a_save(tmp_path):
    out = tmp_path / "out"
    res = dance_ext.condense("digits", iterations=2, **TINY)
    res.save(out)
    (out / "notes.txt").write_text("mine")
    res.save(out)
    assert (out / "notes.txt").read_text() == "mine"


@pytest.mark.skipif(os.geteuid() != 0 or sys.platform != "linux", reason="mounting a small tmpfs needs root on Linux")
def test_a_full_disk_leaves_the_old_result(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(disk)]).returncode != 0:
        pytest.skip("mount -t tmpfs is not permitted here")
    try:
        small = CondenseResult(torch.rand(2, 1, 8, 8), torch.tensor([0, 1]), {"num_classes": 2})
        small.save(disk / "out")
        before = {p.name: p.read_bytes() for p in (disk / "out").iterdir()}
        big = CondenseResult(torch.rand(200, 3, 32, 32), torch.arange(200) % 2, {"num_classes": 2})
        with pytest.raises(OSError):
            big.save(disk / "out")
        assert {p.name: p.read_bytes() for p in (disk / "out").iterdir()} == before
        assert sorted(p.name for p in disk.iterdir() if not p.name.endswith(".lock")) == ["out"]
    finally:
        subprocess.run(["umount", str(disk)])


# ---- untrusted files ------------------------------------------------------------------------
def test_a_factor_that_would_allocate_gigabytes_is_refused(tmp_path):
    res = CondenseResult(torch.rand(2, 1, 8, 8), torch.tensor([0, 1]), {"num_classes": 2})
    res.save(tmp_path / "out")
    forged = CondenseResult(res.images, res.labels, {"num_classes": 2, "factor": 10 ** 6})
    with pytest.raises(ValueError, match=r"factor: expected an int in \[1, 8\]"):
        forged.save(tmp_path / "forged")


def test_a_fifo_is_refused_not_read(tmp_path):
    folder = tmp_path / "result"
    folder.mkdir()
    os.mkfifo(folder / "syn.pt")
    started = time.perf_counter()
    with pytest.raises((ValueError, FileNotFoundError)):
        CondenseResult.load(folder)
    assert time.perf_counter() - started < 5


def test_saving_a_view_writes_only_its_elements(tmp_path):
    big = torch.rand(1000, 1, 8, 8)
    res = CondenseResult(big[:2], torch.tensor([0, 1]), {"num_classes": 2})
    res.save(tmp_path / "out")
    assert (tmp_path / "out" / "syn.pt").stat().st_size < 20_000


# ---- divergence and failed training ----------------------------------------------------------
def test_divergence_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    ckpt = tmp_path / "ckpt"
    with pytest.raises(ValueError, match="lr_img: the run diverged by iteration .* lower lr_img"):
        dance_ext.condense("digits", iterations=40, checkpoint_dir=ckpt, checkpoint_every=1,
                           **{**TINY, "log_every": 4, "lr_img": 1e30})
    state = torch.load(ckpt / "checkpoint.pt", weights_only=True)
    assert 1 <= state["iteration"] < 40 and torch.isfinite(state["syn"]).all()


def test_an_expert_store_with_nan_weights_is_refused_before_work(tmp_path, digits):
    from safetensors.torch import load_file, save_file
    from dance_ext.files import sha256_file
    import json
    store = tmp_path / "experts"
    dance_ext.pretrain_experts(digits, num=1, epochs=2, out=store, width=8, depth=2, progress=False)
    tensors = load_file(store / "experts.safetensors")
    key = next(k for k in tensors if k.startswith("trained."))
    tensors[key][..., 0] = float("nan")
    save_file(tensors, store / "experts.safetensors")
    manifest = json.loads((store / "manifest.json").read_text())
    manifest["sha256"] = sha256_file(store / "experts.safetensors")  # a consistent but poisoned store
    (store / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="NaN or inf weights"):
        dance_ext.condense(digits, iterations=2, **{**TINY, "method": "dance", "experts": store})


def test_pretraining_that_learned_nothing_writes_nothing(tmp_path):
    out = tmp_path / "experts"
    with pytest.raises(ValueError, match="(chance test accuracy|NaN or inf weights).*nothing was written"):
        dance_ext.pretrain_experts("digits", num=1, epochs=1, out=out, width=8, depth=2, lr=1e6, progress=False)
    assert not out.exists() or not any(out.iterdir())


def test_batchnorm_networks_are_refused_for_condensation():
    with pytest.raises(ValueError, match="arch: the network has BatchNorm2d layers"):
        dance_ext.condense("digits", iterations=2, **{**TINY, "arch": "convnet_bn"})


def test_a_manifest_asking_for_a_giant_network_is_refused_before_allocating(tmp_path, digits):
    import json
    store = tmp_path / "experts"
    dance_ext.pretrain_experts(digits, num=1, epochs=3, out=store, width=8, depth=2, progress=False)
    manifest = json.loads((store / "manifest.json").read_text())
    manifest["network"]["width"] = 10 ** 9  # a kilobyte file asking for terabytes
    (store / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="width: 1000000000 is beyond what dance_ext builds"):
        dance_ext.ExpertPool.load(store, device="cpu")
