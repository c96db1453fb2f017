"""Condensed sets in and out of the field's formats: export → load_set round trips for DM and
DANCE (factor 2) sets in every format, the exact on-disk layouts, sets saved the way the
official DM and DANCE codes save them and evaluated by `dance-ext evaluate`, networks from
outside (callables, timm), the class-named grid, and the hostile inputs of these paths
(docs/HOSTILE_INPUTS.md, "Interoperability")."""
import copy
import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import dance_ext
from dance_ext import cli
from dance_ext.compare import cross_arch
from dance_ext.data import DATASET_STATS, as_class_data, load_dataset
from dance_ext.formats import png
from dance_ext.interop import load_set
from dance_ext.results import CondenseResult, image_grid, png_bytes
from test_hostile import Guarded, Marker, assert_cli_refused, assert_refused, no_work, torch_bytes
from test_interop_data import _DuckHF, imagenet_tree, tiny_tree

pytestmark = pytest.mark.usefixtures("single_thread")

FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def a_set(method: str, dataset: str, channels: int, size: int, factor: int, ipc: int = 1, classes=None):
    """An optimised-looking set (continuous pixel values) with the meta condense writes."""
    mean, std = DATASET_STATS[dataset]
    meta = {"method": method, "dataset": dataset, "num_classes": 10, "mean": list(mean), "std": list(std),
            "factor": factor, "ipc": ipc, "iterations": 7, "classes": classes}
    images = torch.rand(10 * ipc, channels, size, size, generator=torch.Generator().manual_seed(0))
    return CondenseResult(images, torch.arange(10).repeat_interleave(ipc), meta)


SETS = {"dm": lambda: a_set("dm", "cifar10", 3, 32, 1, ipc=2, classes=[f"c{i}" for i in range(10)]),
        "dance": lambda: a_set("dance", "fashion-mnist", 1, 28, 2, classes=FASHION)}
# largest decoded-pixel difference after a round trip: 16-bit PNGs round to 1/65535
TOLERANCE = {"tensors": 0.0, "dance": 0.0, "dm": 1e-6, "imagefolder": 0.5 / 65535 + 1e-7}


@pytest.mark.parametrize("fmt", ["tensors", "imagefolder", "dm", "dance"])
@pytest.mark.parametrize("kind", ["dm", "dance"])
def test_export_then_load_set_gives_the_same_decoded_set(kind, fmt, tmp_path):
    res = SETS[kind]()
    images, labels = res.decoded()
    back = load_set(res.export(tmp_path / fmt, format=fmt))  # the format is inferred
    got_images, got_labels = back.decoded()
    assert torch.equal(got_labels, labels)
    assert float((got_images - images).abs().max()) <= TOLERANCE[fmt]
    for key in ("dataset", "method", "num_classes", "classes"):
        assert back.meta[key] == res.meta[key], key
    assert back.meta["mean"] == pytest.approx(res.meta["mean"]) and back.meta["std"] == pytest.approx(res.meta["std"])
    assert back.meta["source_format"] == fmt
    if fmt == "dance":  # DANCE's own format keeps the mosaics and their factor
        assert back.factor == res.factor and torch.equal(back.images, res.images)
    else:
        assert back.factor == 1 and back.images.shape == images.shape
    again = load_set(back.export(tmp_path / "again", format="tensors"))  # export accepts a loaded set
    assert torch.equal(again.decoded()[0], got_images)


def png_header(path: Path) -> tuple:
    """(width, height, bit depth, colour type) of a PNG."""
    return struct.unpack(">IIBB", path.read_bytes()[16:26])


def test_on_disk_layouts(tmp_path):
    res = SETS["dance"]()  # fashion-mnist, 10 classes, ipc 1, factor 2: 40 decoded 28×28 grey images
    images, labels = res.decoded()
    mean, std = DATASET_STATS["fashion-mnist"]

    out = res.export(tmp_path / "t", format="tensors")
    assert sorted(p.name for p in out.iterdir()) == ["images.pt", "labels.pt", "meta.json"]
    assert torch.equal(torch.load(out / "images.pt", weights_only=True), images)
    assert torch.load(out / "labels.pt", weights_only=True).dtype == torch.int64
    meta = json.loads((out / "meta.json").read_text())
    assert meta["mean"] == pytest.approx(mean) and meta["classes"] == FASHION and meta["source_factor"] == 2

    out = res.export(tmp_path / "f", format="imagefolder")
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert folders[0] == "000_T-shirt_top" and folders[9] == "009_Ankle_boot" and len(folders) == 10
    assert sorted(p.name for p in (out / folders[3]).iterdir()) == [f"{i:05d}.png" for i in range(4)]
    assert png_header(out / folders[0] / "00000.png") == (28, 28, 16, 0)  # 16-bit grey
    assert json.loads((out / "meta.json").read_text())["png_bits"] == 16

    out = res.export(tmp_path / "m", format="dm")
    [file] = list(out.iterdir())
    assert file.name == "res_DANCE_FashionMNIST_ConvNet_4ipc.pt"
    payload = torch.load(file, weights_only=True)
    assert set(payload) == {"data", "accs_all_exps", "dance_ext_meta"}
    image_syn, label_syn = payload["data"][0]
    assert torch.allclose(image_syn, (images - mean[0]) / std[0], atol=1e-6)  # normalised, as DM keeps them
    assert torch.equal(label_syn, labels)

    out = res.export(tmp_path / "d", format="dance")
    assert sorted(p.name for p in out.iterdir()) == ["args.log", "data_best.pt"]
    data, target = torch.load(out / "data_best.pt", weights_only=True)
    assert torch.equal(data, res.images) and torch.equal(target, res.labels)  # undecoded mosaics in [0, 1]
    args = json.loads((out / "args.log").read_text())
    assert (args["dataset"], args["factor"], args["decode_type"], args["ipc"]) == ("fashion", 2, "single", 1)


def test_sets_of_real_images_are_8_bit_pngs_and_exact(tmp_path):
    res = dance_ext.condense("digits", ipc=1, method="random", progress=False)
    res.images = torch.randint(0, 256, res.images.shape).float() / 255  # as from a uint8 dataset
    out = res.export(tmp_path / "f", format="imagefolder")
    assert png_header(next(out.glob("*/00000.png")))[2] == 8
    assert torch.equal(load_set(out).images, res.images)


def test_folders_of_other_images_and_dm_sets_beyond_the_pixel_range(tmp_path):
    from PIL import Image
    rng = np.random.default_rng(0)
    rgb, grey = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8), rng.integers(0, 256, (4, 4), dtype=np.uint8)
    (tmp_path / "f" / "cat").mkdir(parents=True)
    (tmp_path / "f" / "dog").mkdir()
    Image.fromarray(rgb).save(tmp_path / "f" / "cat" / "a.png")  # Pillow's filters
    Image.fromarray(grey).save(tmp_path / "f" / "dog" / "b.png")  # a grey image in an RGB set
    Image.fromarray(rgb).save(tmp_path / "f" / "dog" / "c.bmp")
    loaded = load_set(tmp_path / "f")
    assert loaded.meta["classes"] == ["cat", "dog"] and loaded.labels.tolist() == [0, 1, 1]
    assert torch.equal(loaded.images[1], torch.from_numpy(grey).float().div(255).expand(3, 4, 4))
    assert torch.equal(loaded.images[2], torch.from_numpy(rgb).permute(2, 0, 1).float() / 255)
    over = torch.full((2, 1, 4, 4), 1.2)  # DM does not clamp: its pixels may leave [0, 1]
    torch.save({"data": [[(over - 0.5) / 0.25, torch.arange(2)]]}, tmp_path / "res_DM_x_ConvNet_1ipc.pt")
    kept = load_set(tmp_path / "res_DM_x_ConvNet_1ipc.pt", mean=[0.5], std=[0.25])
    assert torch.allclose(kept.images, over)


def test_png_codec_reads_every_row_filter():
    rng = np.random.default_rng(0)
    for dtype, channels in ((np.uint8, 1), (np.uint8, 3), (np.uint16, 1), (np.uint16, 3)):
        pixels = rng.integers(0, np.iinfo(dtype).max + 1, (5, 7, channels), dtype=dtype)
        assert np.array_equal(png.decode(png.encode(pixels), "x"), pixels)
    # Pillow's adaptive filters (Sub, Up, Paeth) and hand-made Average rows
    from PIL import Image
    import io
    y, x = np.mgrid[0:24, 0:24]
    smooth = np.stack([(x * x + y * y) // 4 % 256, x * 9 % 256, 255 - y], -1).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(smooth).save(buffer, format="PNG")
    assert np.array_equal(png.decode(buffer.getvalue(), "x"), smooth)
    for kind in (3, 4):  # Average and Paeth rows, filtered here by the PNG spec's definitions
        grey = rng.integers(0, 256, (48, 48), dtype=np.uint8)  # large enough for Paeth ties
        data = png.encode(grey[..., None])[:33] + png._chunk(b"IDAT", zlib.compress(filtered(grey, kind))) + \
            png._chunk(b"IEND", b"")
        assert np.array_equal(png.decode(data, "x")[..., 0], grey), kind


def filtered(grey: np.ndarray, kind: int) -> bytes:
    """Rows of a grey 8-bit image under PNG filter ``kind`` (3 Average, 4 Paeth), one byte per pixel."""
    def paeth(a, b, c):
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        return a if pa <= pb and pa <= pc else b if pb <= pc else c

    out, prior = bytearray(), [0] * grey.shape[1]
    for row in grey.astype(int).tolist():
        out.append(kind)
        for x, value in enumerate(row):
            left, up, up_left = (row[x - 1] if x else 0), prior[x], (prior[x - 1] if x else 0)
            predicted = (left + up) // 2 if kind == 3 else paeth(left, up, up_left)
            out.append((value - predicted) % 256)
        prior = row
    return bytes(out)


# ---------------------------------------------------------------------------------------
# The official codes' files, evaluated by `dance-ext evaluate`

@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def first_per_class(data, n: int = 1):
    index = data.first_per_class(n).reshape(-1)
    return data.images[index], data.labels[index]


def run_cli(capsys, *argv) -> dict:
    assert cli.main([*argv, "--no-progress"]) == 0
    out = capsys.readouterr().out
    return json.loads(out[out.index("{"):])


def test_dm_file_saved_as_main_dm_saves_it_is_evaluated(digits, tmp_path, capsys):
    pixels, label_syn = first_per_class(digits)
    image_syn = digits.normalize(pixels).requires_grad_(True)  # DM optimises normalised images
    data_save = [[copy.deepcopy(image_syn.detach().cpu()), copy.deepcopy(label_syn.detach().cpu())]]
    accs_all_exps = {"ConvNet": [np.float64(0.5)]}  # DM's accuracies are numpy floats
    torch.save({"data": data_save, "accs_all_exps": accs_all_exps}, tmp_path / "res_DM_digits_ConvNet_1ipc.pt")
    loaded = load_set(tmp_path)
    assert loaded.meta["dataset"] == "digits" and torch.allclose(loaded.images, pixels, atol=1e-6)
    scores = run_cli(capsys, "evaluate", str(tmp_path), "--runs", "1", "--epochs", "2")
    assert scores["protocol"] == "dm" and scores["train_images"] == 10 and len(scores["runs"]) == 1


def test_dance_files_saved_as_dance_saves_them_are_evaluated(digits, tmp_path, capsys):
    data, targets = first_per_class(digits, 4)  # stands for 10 classes × 1 mosaic × f² = 4
    synset_data = data.reshape(10, 4, 1, 8, 8)[:, :, :, ::2, ::2].permute(0, 2, 1, 3, 4)  # 2×2 tiles per mosaic
    synset_data = synset_data.reshape(10, 1, 2, 2, 4, 4).permute(0, 1, 2, 4, 3, 5).reshape(10, 1, 8, 8)
    torch.save([synset_data.detach().cpu(), torch.arange(10).cpu()], tmp_path / "data_best.pt")
    with open(tmp_path / "args.log", "w") as f:  # DANCE.py: json.dump(args.__dict__, f, indent=3)
        json.dump({"dataset": "digits", "ipc": 1, "factor": 2, "decode_type": "single", "niter": 500}, f, indent=3)
    scores = run_cli(capsys, "evaluate", str(tmp_path / "data_best.pt"), "digits", "--format", "dance",
                     "--runs", "1", "--epochs", "1")
    assert scores["protocol"] == "dance" and scores["train_images"] == 40


def test_cli_export_and_format_when_ambiguous(digits, tmp_path, capsys):
    saved = dance_ext.condense(digits, ipc=1, method="random", progress=False).save(tmp_path / "saved")
    assert cli.main(["export", str(saved), "--format", "tensors", "--out", str(tmp_path / "both")]) == 0
    assert cli.main(["export", str(saved), "--format", "dm", "--out", str(tmp_path / "both")]) == 0
    assert "wrote dm to" in capsys.readouterr().out
    with pytest.raises(ValueError, match=r"it holds files of the formats tensors, dm\); pass format="):
        load_set(tmp_path / "both")
    scores = run_cli(capsys, "evaluate", str(tmp_path / "both"), "digits", "--format", "tensors", "--runs", "1",
                     "--epochs", "1")
    assert scores["train_images"] == 10


# ---------------------------------------------------------------------------------------
# Networks from outside

def tiny_net(channels, num_classes, image_size):
    return nn.Sequential(nn.Flatten(), nn.Linear(channels * image_size[0] * image_size[1], num_classes))


def test_callable_networks_in_evaluate_and_cross_arch(digits):
    res = dance_ext.condense(digits, ipc=1, method="random", progress=False)
    test = load_dataset("digits", split="test")
    scores = dance_ext.evaluate(res, test, arch=tiny_net, runs=1, epochs=2, progress=False)
    assert scores["arch"] == "tiny_net" and scores["network"]["image_size"] == [8, 8]
    rows = cross_arch({"random": res}, test, archs=("convnet", tiny_net), runs=1, epochs=1, width=8,
                      progress=False)
    assert [r["arch"] for r in rows] == ["convnet", "tiny_net"]


# ---------------------------------------------------------------------------------------
# Pictures

def test_condense_records_classes_and_the_grid_names_its_rows(digits):
    res = dance_ext.condense(digits, ipc=1, method="random", progress=False)
    assert res.meta["classes"] == [str(i) for i in range(10)]
    grid = image_grid(res.images, res.labels, 10)
    plain, named = png_bytes(grid), png_bytes(grid, row_labels=res.meta["classes"])
    from PIL import Image
    import io
    plain_im, named_im = Image.open(io.BytesIO(plain)), Image.open(io.BytesIO(named))
    assert named_im.height == plain_im.height and named_im.width > plain_im.width
    margin = np.asarray(named_im)[:, :named_im.width - plain_im.width]
    assert margin.min() < 128 and margin.max() == 255  # dark text on white


# ---------------------------------------------------------------------------------------
# Hostile inputs (docs/HOSTILE_INPUTS.md, "Interoperability")

class Ctx(Guarded):
    def __init__(self, tmp: Path, saved: Path):
        self.tmp, self.saved, self.guarded = tmp, saved, []

    def folder(self, files: dict) -> Path:
        """A folder of torch.save'd objects (name -> object), guarded."""
        path = self.tmp / "set"
        path.mkdir()
        for name, obj in files.items():
            (path / name).write_bytes(torch_bytes(obj))
        return self.guard(path)


@pytest.fixture(scope="module")
def saved(digits, tmp_path_factory):
    return dance_ext.condense(digits, ipc=1, method="random", progress=False).save(
        tmp_path_factory.mktemp("saved") / "result")


@pytest.fixture
def ctx(tmp_path, saved):
    return Ctx(tmp_path, saved)


def ten(n: int = 10, channels: int = 3):
    return torch.rand(n, channels, 8, 8)


def corrupt_png(c: Ctx) -> Path:
    out = dance_ext.load(c.saved).export(c.tmp / "pngs", format="imagefolder")
    file = next(out.glob("*/00000.png"))
    data = bytearray(file.read_bytes())
    data[60] ^= 0x01  # inside IDAT: its CRC no longer matches
    file.write_bytes(bytes(data))
    return c.guard(out)


def a_file(c: Ctx) -> Path:
    path = c.tmp / "a-file"
    path.write_text("not a folder")
    return c.guard(path)


def other_pngs(c: Ctx) -> Path:
    """An imagefolder export of two images per class, over which a one-per-class set is exported."""
    res = dance_ext.load(c.saved)
    double = CondenseResult(res.images.repeat_interleave(2, 0), res.labels.repeat_interleave(2), res.meta)
    return c.guard(double.export(c.tmp / "pngs", format="imagefolder"))


def wrong_logits(channels, num_classes, image_size):
    return tiny_net(channels, 3, image_size)


def evaluate_saved(c: Ctx, arch):
    return lambda: dance_ext.evaluate(dance_ext.load(c.saved), "digits", arch=arch, runs=1, epochs=1, progress=False)


DM_FILE = "res_DM_CIFAR10_ConvNet_1ipc.pt"

CASES = [
    pytest.param(lambda c: lambda: load_set(c.saved, format="npz"), ValueError,
                 r"format: expected one of \('result', 'tensors', 'imagefolder', 'dm', 'dance'\), got 'npz'",
                 id="load-set-wrong-format"),
    pytest.param(lambda c: lambda: dance_ext.load(c.saved).export(c.guard(c.tmp / "out"), format="npz"), ValueError,
                 r"format: expected one of \('tensors', 'imagefolder', 'dm', 'dance'\), got 'npz'",
                 id="export-wrong-format"),
    pytest.param(lambda c: lambda: load_set(c.folder({"images.pt": ten(), "labels.pt": torch.arange(10),
                                                      DM_FILE: {}})), ValueError,
                 r"format: cannot tell the format of .* \(it holds files of the formats tensors, dm\); pass format=",
                 id="format-ambiguous"),
    pytest.param(lambda c: lambda: load_set(c.folder({"weights.pt": ten()})), ValueError,
                 r"format: cannot tell the format of .*set \(expected syn\.pt, images\.pt \+ labels\.pt",
                 id="format-unknown"),
    pytest.param(lambda c: lambda: load_set(c.folder({"images.pt": {"x": ten()}, "labels.pt": torch.arange(10)})),
                 ValueError, r"images\.pt holds a dict with keys \['x'\]; expected one tensor of images",
                 id="tensors-wrong-keys"),
    pytest.param(lambda c: lambda: load_set(c.folder({DM_FILE: {"images": ten(), "labels": torch.arange(10)}})),
                 ValueError, r"is not a DM result: expected a dict with a non-empty list under 'data' .* found "
                             r"\['images', 'labels'\]", id="dm-wrong-keys"),
    pytest.param(lambda c: lambda: load_set(c.folder({"images.pt": ten(), "labels.pt": torch.arange(9)})),
                 ValueError, r"labels: 9 labels for 10 images \(length mismatch\)", id="tensors-label-count-mismatch"),
    pytest.param(lambda c: lambda: load_set(c.folder({DM_FILE: {"data": [[ten(), torch.arange(9)]]}})),
                 ValueError, r"labels: 9 labels for 10 images \(length mismatch\)", id="dm-label-count-mismatch"),
    pytest.param(lambda c: lambda: load_set(c.folder({"res_DM_mystery_ConvNet_1ipc.pt": {
        "data": [[ten(), torch.arange(10)]]}})), ValueError,
                 r"mean/std: .* holds normalised images of an unknown dataset; pass dataset= or mean= and std=",
                 id="dm-unknown-dataset"),
    pytest.param(lambda c: lambda: load_set(c.folder({"data_best.pt": [ten(), torch.arange(10)]})), ValueError,
                 r"factor: .*data_best\.pt has no args\.log beside it .* pass factor=", id="dance-without-factor"),
    pytest.param(lambda c: lambda: load_set(c.folder({DM_FILE: {"data": Marker(str(c.marker))}})), ValueError,
                 r"is not a readable DM result file: it holds a pickled posix\.mkdir", id="dm-pickled-code"),
    pytest.param(lambda c: lambda: load_set(corrupt_png(c)), ValueError,
                 r"00000\.png: truncated or corrupt PNG \(chunk b'IDAT'\)", id="imagefolder-corrupt-png"),
    pytest.param(lambda c: lambda: dance_ext.load(c.saved).export(other_pngs(c), format="imagefolder"), ValueError,
                 r"directory: .* already holds images this export would not replace \(first: .*00001\.png\); export "
                 "into a new or empty folder", id="export-over-other-images"),
    pytest.param(lambda c: lambda: dance_ext.load(c.saved).export(a_file(c), format="dm"),
                 ValueError, r"directory: .*a-file' cannot be a folder", id="export-into-a-file"),
    pytest.param(lambda c: lambda: load_dataset("imagewolf", root=c.guard(imagenet_tree(c.tmp / "in"))), ValueError,
                 r"name: unknown dataset 'imagewolf' \(did you mean 'imagewoof'\?\)", id="unknown-subset-name"),
    pytest.param(lambda c: lambda: load_dataset("imagewoof", "train", root=imagenet_tree(c.tmp / "in", skip=2,
                                                                                       skip_in=("val",))),
                 FileNotFoundError, r"imagewoof: 2 of its 10 wnid folders are missing under .*val \(first: n02099601\)",
                 id="subset-missing-wnid-folders"),
    pytest.param(lambda c: lambda: load_dataset("tinyimagenet", root=tiny_tree(c.tmp / "tiny", annotations=False)),
                 FileNotFoundError, r"tinyimagenet: .*val_annotations\.txt is missing; expected under",
                 id="tinyimagenet-missing-annotations"),
    pytest.param(lambda c: lambda: as_class_data(without_labels()), ValueError,
                 r"needs an 'image' or 'img' column and a 'label' column; it has \['image'\]",
                 id="hf-missing-label-column"),
    pytest.param(lambda c: lambda: as_class_data("digits", mean=(0.5,)), ValueError,
                 "mean/std: pass both", id="mean-without-std"),
    pytest.param(lambda c: evaluate_saved(c, "timm:resnet18"), ImportError,
                 r"arch: 'timm:resnet18' needs timm, which is not installed; pip install timm",
                 id="timm-not-installed"),
    pytest.param(lambda c: evaluate_saved(c, lambda ch, n, size: "a network"), TypeError,
                 r"arch: <lambda>\(channels, num_classes, image_size\) returned a str, expected an nn\.Module",
                 id="callable-not-a-module"),
    pytest.param(lambda c: evaluate_saved(c, wrong_logits), ValueError,
                 r"arch: wrong_logits maps 2 images to shape \(2, 3\), .*; expected logits of shape \(2, 10\)",
                 id="callable-wrong-logits"),
]


def without_labels():
    """A Hugging Face dataset (duck-typed) with images and no label column."""
    duck = _DuckHF([np.zeros((2, 2), np.uint8)], [0], ["a"])
    del duck.columns["label"]
    duck.column_names = ["image"]
    return duck


def no_work_here(monkeypatch):
    """The package's no-work guards, plus image decoding in the readers of this issue."""
    no_work(monkeypatch)

    def work(*args, **kwargs):
        raise AssertionError("images were decoded before the input was refused")

    for module in ("tinyimagenet", "imagenet_subsets"):
        monkeypatch.setattr(sys.modules[f"dance_ext.data.readers.{module}"], "read_images", work)


@pytest.mark.parametrize("build,exc,match", CASES)
def test_interop_hostile_input(build, exc, match, ctx, monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # timm absent, whatever this machine has
    assert_refused(build(ctx), ctx, exc, match, lambda: no_work_here(monkeypatch))


CLI_CASES = [
    pytest.param(lambda c: ["evaluate", str(c.folder({"images.pt": ten(), "labels.pt": torch.arange(10),
                                                      DM_FILE: {}})), "digits"],
                 r"format: cannot tell the format of .*; pass format=", id="cli-evaluate-ambiguous-format"),
    pytest.param(lambda c: ["evaluate", str(c.saved), "--arch", "timm:resnet18", "--runs", "1"],
                 r"arch: 'timm:resnet18' needs timm", id="cli-evaluate-timm-missing"),
    pytest.param(lambda c: ["evaluate", str(c.folder({"images.pt": ten(), "labels.pt": torch.arange(10)}))],
                 r"test: .*set does not name its dataset; pass the test dataset", id="cli-evaluate-no-dataset"),
    pytest.param(lambda c: ["export", str(c.folder({DM_FILE: {"images": ten()}})), "--format", "tensors",
                            "--out", str(c.guard(c.tmp / "out"))],
                 r"is not a DM result: expected a dict", id="cli-export-dm-wrong-keys"),
]


@pytest.mark.parametrize("build,match", CLI_CASES)
def test_interop_cli_hostile_input(build, match, ctx, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "timm", None)
    assert_cli_refused(build(ctx), ctx, match, lambda: no_work_here(monkeypatch), monkeypatch, capsys)
