"""Expert pretraining, the safetensors + manifest store and the resident ExpertPool."""
import json
import os
import re
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from dance_ext import experts as experts_mod
from dance_ext.files import sha256_file
from dance_ext.experts import ExpertPool, pretrain_experts
from dance_ext.models import build_network
from dance_ext.utils import derive_seed, seeded_network

SMALL = dict(num=2, epochs=2, width=16, seed=3, device="cpu", progress=False)

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    out = tmp_path_factory.mktemp("experts")
    pool = pretrain_experts("digits", out=out, **SMALL)
    return out, pool


def copy_store(store, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(store[0], dst)
    return dst


def test_store_files_and_manifest(store):
    out, pool = store
    assert sorted(os.listdir(out)) == ["experts.safetensors", "manifest.json"]
    m = json.loads((out / "manifest.json").read_text())
    assert m["format_version"] == experts_mod.FORMAT_VERSION and m["dataset"] == "digits"
    assert (m["num_classes"], m["channels"], m["image_size"]) == (10, 1, [8, 8])
    assert m["network"]["width"] == 16 and m["network"]["depth"] is not None
    assert (m["epochs"], m["lr"], m["batch_size"], m["seed"], m["milestones"]) == (2, 0.01, 64, 3, [1, 1])
    assert m["strategy"] == "color_crop" and m["cutmix_p"] == 0.5 and m["dance_ext_version"]
    assert m["sha256"] == sha256_file(out / "experts.safetensors")
    assert [e["index"] for e in m["experts"]] == [0, 1]
    # the test split of digits was used by default; two epochs already beat chance
    assert all(e["test_accuracy"] > 10.0 and e["train_seconds"] > 0 for e in m["experts"])
    assert pool.num_experts == 2 and pool.spec == m["network"] and pool.manifest == m


def test_round_trip_equals_saved_weights_and_init(store):
    out, pool = store
    tensors = load_file(str(out / "experts.safetensors"))
    model, flat = pool.new_model()
    assert not any(p.requires_grad for p in model.parameters())
    for k in range(2):
        pool.expert_(flat, torch.tensor([k]))
        for name, p in model.named_parameters():
            assert torch.equal(p, tensors[f"trained.{k}.{name}"])
        # the saved init is the network the seed builds, and training moved it
        fresh = seeded_network(lambda: build_network(pool.spec), derive_seed(3, experts_mod._SEED_TAG, k, 0), "cpu")
        for name, p in fresh.named_parameters():
            assert torch.equal(p, tensors[f"init.{k}.{name}"])
        assert not torch.equal(pool.init_flat[k], pool.trained_flat[k])
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    reloaded = ExpertPool.load(out, device="cpu")
    assert torch.equal(torch.rand(3), expected), "loading must leave the global RNG alone"
    assert torch.equal(reloaded.init_flat, pool.init_flat) and torch.equal(reloaded.trained_flat, pool.trained_flat)
    assert pool.init_flat.is_contiguous() and pool.init_flat.shape == (2, flat.numel())


def test_middle_interpolates_between_trained_and_init(store):
    _, pool = store
    model, flat = pool.new_model()
    k = torch.tensor([1], dtype=torch.int64)
    pool.middle_(flat, k, torch.tensor([0.0]))
    assert torch.equal(flat, pool.trained_flat[1])
    pool.middle_(flat, k, torch.tensor([1.0]))
    assert torch.equal(flat, pool.init_flat[1])
    pool.middle_(flat, torch.tensor(0), torch.tensor(0.3))
    expected = 0.3 * pool.init_flat[0] + 0.7 * pool.trained_flat[0]
    torch.testing.assert_close(flat, expected)
    # the model sees the flat buffer: its output follows the interpolation
    x = torch.rand(2, 1, 8, 8)
    pool.middle_(flat, 1, 0.5)
    out_mid = model(x)
    pool.expert_(flat, 1)
    assert not torch.equal(model(x), out_mid)


def test_middle_rejects_bad_arguments(store):
    _, pool = store
    _, flat = pool.new_model()
    with pytest.raises(IndexError, match="k"):
        pool.middle_(flat, 2, 0.5)
    with pytest.raises(ValueError, match="k"):
        pool.expert_(flat, torch.tensor([0.0]))
    with pytest.raises(ValueError, match="flat_out"):
        pool.middle_(flat[:-1], 0, 0.5)


def test_check_compatible(store):
    _, pool = store
    pool.check_compatible(1, 10, (8, 8))
    pool.check_compatible(1, 10, 8)
    with pytest.raises(ValueError, match=r"channels=1, num_classes=10, image_size=\(8, 8\).*channels=3, "
                                         r"num_classes=10, image_size=\(32, 32\)"):
        pool.check_compatible(3, 10, (32, 32))


def test_tampered_byte_is_detected(store, tmp_path):
    dst = copy_store(store, tmp_path)
    weights = dst / "experts.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256.*corrupt"):
        ExpertPool.load(dst, device="cpu")


def test_truncated_file_is_detected(store, tmp_path):
    dst = copy_store(store, tmp_path)
    weights = dst / "experts.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ValueError, match=re.escape(str(weights)) + ".*sha256"):
        ExpertPool.load(dst, device="cpu")


def test_missing_files_and_wrong_tensors_are_detected(store, tmp_path):
    dst = copy_store(store, tmp_path)
    weights, manifest = dst / "experts.safetensors", dst / "manifest.json"

    def rewrite(tensors):
        save_file(tensors, str(weights))
        m = json.loads(manifest.read_text())
        m["sha256"] = sha256_file(weights)
        manifest.write_text(json.dumps(m))

    original = load_file(str(weights))
    name = next(iter(original))
    rewrite({k: (v[..., :1] if k == name else v) for k, v in original.items()})
    with pytest.raises(ValueError, match=f"tensor '{name}' has shape"):
        ExpertPool.load(dst, device="cpu")
    rewrite({k: v for k, v in original.items() if k != name})
    with pytest.raises(ValueError, match="tensor names do not match"):
        ExpertPool.load(dst, device="cpu")
    weights.unlink()
    with pytest.raises(FileNotFoundError, match="experts.safetensors is missing"):
        ExpertPool.load(dst, device="cpu")
    manifest.unlink()
    with pytest.raises(FileNotFoundError, match="no manifest.json"):
        ExpertPool.load(dst, device="cpu")


def test_overwrite_refusal_happens_before_training(store, monkeypatch):
    out, _ = store
    monkeypatch.setattr(experts_mod, "train_epoch", lambda *a, **k: pytest.fail("trained before refusing"))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        pretrain_experts("digits", out=out, **SMALL)


def test_failed_save_leaves_no_partial_files(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(experts_mod, "save_safetensors", fail)
    out = tmp_path / "fresh"
    with pytest.raises(OSError, match="disk full"):
        pretrain_experts("digits", out=out, **dict(SMALL, num=1, epochs=2))
    assert not out.exists() or os.listdir(out) == []


def test_failed_overwrite_keeps_the_old_store(store, tmp_path, monkeypatch):
    dst = copy_store(store, tmp_path)
    before = {f: (dst / f).read_bytes() for f in os.listdir(dst)}
    monkeypatch.setattr(experts_mod.json, "dumps", lambda *a, **k: (_ for _ in ()).throw(OSError("killed")))
    with pytest.raises(OSError, match="killed"):
        pretrain_experts("digits", out=dst, overwrite=True, **dict(SMALL, num=1, epochs=2))
    assert {f: (dst / f).read_bytes() for f in os.listdir(dst)} == before
    ExpertPool.load(dst, device="cpu")


def test_overwrite_replaces_the_store(store, tmp_path):
    dst = copy_store(store, tmp_path)
    pool = pretrain_experts("digits", out=dst, overwrite=True, **dict(SMALL, num=1, epochs=2, seed=4))
    assert pool.num_experts == 1 and pool.manifest["seed"] == 4
    assert sorted(os.listdir(dst)) == ["experts.safetensors", "manifest.json"]


def test_pretraining_is_deterministic(store, tmp_path):
    _, pool = store
    again = pretrain_experts("digits", out=tmp_path / "again", **SMALL)
    assert torch.equal(again.trained_flat, pool.trained_flat)


def test_pretrain_rejects_bad_arguments(tmp_path):
    for kwargs, match in ((dict(num=0), "num"), (dict(epochs=0), "epochs"), (dict(batch_size=0), "batch_size"),
                          (dict(lr=0.0), "lr"), (dict(seed=-1), "seed"), (dict(arch="nonet"), "arch")):
        with pytest.raises(ValueError, match=match):
            pretrain_experts("digits", out=tmp_path / "bad", **{**SMALL, **kwargs})
    with pytest.raises(ValueError, match="test"):
        pretrain_experts("digits", out=tmp_path / "bad", test=(torch.rand(4, 3, 8, 8), torch.arange(4)),
                         **SMALL)
