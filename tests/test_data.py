"""dance_ext.data: built-in loaders (files written here at run time), tensors and Dataset
inputs, validation errors, class tables."""
import gzip
import io
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from dance_ext.data import (DATASET_STATS, ClassData, as_class_data, known_datasets, load_dataset,
                            read_idx)

FASHION_ROOT = Path("/usr/share/datasets/fashion-mnist")


# ---------------------------------------------------------------------------------------
# File writers

def write_idx(path: Path, arr: np.ndarray, gz: bool = False) -> Path:
    codes = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D}
    header = bytes([0, 0, codes[arr.dtype], arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    raw = header + arr.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        raw = gzip.compress(raw)
    path.write_bytes(raw)
    return path


def write_idx_split(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray, gz: bool):
    write_idx(folder / f"{prefix}-images-idx3-ubyte", images, gz)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels, gz)


def fake_idx(n: int, seed: int, classes: int = 10):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 6, 5), dtype=np.uint8)  # H != W catches transposes
    labels = (np.arange(n) % classes).astype(np.uint8)
    return images, labels


class _Py2Pickler(pickle._Pickler):
    """Writes str and bytes as Python 2 byte strings, like the published CIFAR batches."""
    dispatch = pickle._Pickler.dispatch.copy()

    def _save_py2_str(self, obj):
        obj = obj.encode("latin1") if isinstance(obj, str) else obj
        n = len(obj)
        head = pickle.SHORT_BINSTRING + bytes([n]) if n < 256 else pickle.BINSTRING + struct.pack("<i", n)
        self.write(head + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str
    dispatch[str] = _save_py2_str


def write_py2_pickle(path: Path, obj):
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    # Python 2 era numpy named its reconstructor numpy.core.multiarray.
    path.write_bytes(buf.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))


def write_cifar10(folder: Path, per_batch: int = 4) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    out = {}
    for fname in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, per_batch)]
        out[fname] = (data, labels)
        write_py2_pickle(folder / fname, {"batch_label": fname, "labels": labels, "data": data,
                                          "filenames": [f"{fname}_{i}.png" for i in range(per_batch)]})
    write_py2_pickle(folder / "batches.meta", {"label_names": [f"c{i}" for i in range(10)],
                                               "num_vis": 3072})
    return out


def write_png(path: Path, arr: np.ndarray, mode: str):
    from PIL import Image
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode).save(path)


# ---------------------------------------------------------------------------------------
# digits and the registry

def test_digits_splits_shapes_and_stats():
    from sklearn.datasets import load_digits
    train, test = load_dataset("digits"), load_dataset("digits", split="test")
    assert train.images.shape == (1437, 1, 8, 8) and test.images.shape == (360, 1, 8, 8)
    assert train.images.dtype == torch.float32 and train.labels.dtype == torch.int64
    assert (train.num_classes, train.channels, train.image_size) == (10, 1, (8, 8))
    assert train.name == "digits" and train.classes == [str(i) for i in range(10)]
    ref = load_digits()
    every5 = np.arange(1797) % 5 == 0
    assert torch.equal(test.images[:, 0], torch.from_numpy(ref.images[every5] / 16).float())
    assert torch.equal(train.labels, torch.from_numpy(ref.target[~every5]))
    assert float(train.images.min()) == 0.0 and float(train.images.max()) == 1.0
    assert (train.mean, train.std) == DATASET_STATS["digits"]
    assert float(train.images.mean()) == pytest.approx(train.mean[0], abs=1e-4)
    assert float(train.images.std(correction=0)) == pytest.approx(train.std[0], abs=1e-4)
    again = load_dataset("digits")
    assert torch.equal(again.images, train.images) and torch.equal(again.labels, train.labels)
    assert train.describe() == "digits: 1437 images, 1x8x8, 10 classes, 133-154 per class"


@pytest.mark.parametrize("alias", ["Fashion_MNIST", "fashionmnist", "FASHION", "fashion-mnist"])
def test_aliases_resolve(alias, tmp_path):
    write_idx_split(tmp_path, "train", *fake_idx(10, 0), gz=False)
    assert load_dataset(alias, root=tmp_path).name == "fashion-mnist"


def test_known_datasets_lists_builtins():
    known = known_datasets()
    assert set(known) == {"digits", "mnist", "fashion-mnist", "cifar10", "cifar100", "svhn", "tinyimagenet",
                          "imagenette", "imagewoof", "imagefruit", "imagemeow", "imagesquawk", "imageyellow"}
    assert "fashion" in known["fashion-mnist"]


def test_unknown_name_lists_known_ones():
    with pytest.raises(ValueError, match=r"name: unknown dataset 'imagenet-1k'.*digits.*fashion-mnist"):
        load_dataset("imagenet-1k")
    with pytest.raises(ValueError, match=r"data: 'nope' is neither a known dataset \(digits"):
        as_class_data("nope")
    with pytest.raises(TypeError, match="name: expected a dataset name"):
        load_dataset(3)


@pytest.mark.parametrize("split", ["val", "Train", None])
def test_bad_split(split):
    with pytest.raises(ValueError, match="split: expected 'train' or 'test'"):
        load_dataset("digits", split=split)
    with pytest.raises(ValueError, match="split: expected 'train' or 'test'"):
        as_class_data((torch.zeros(2, 1, 4, 4), [0, 1]), split=split)


# ---------------------------------------------------------------------------------------
# IDX (MNIST, Fashion-MNIST)

@pytest.mark.parametrize("name,sub", [("mnist", ""), ("mnist", "raw"), ("mnist", "MNIST/raw"),
                                      ("fashion-mnist", "raw"), ("fashion-mnist", "FashionMNIST/raw")])
@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip_in_each_layout(tmp_path, name, sub, gz):
    folder = tmp_path / sub if sub else tmp_path
    train, test = fake_idx(30, 1), fake_idx(12, 2)
    write_idx_split(folder, "train", *train, gz=gz)
    write_idx_split(folder, "t10k", *test, gz=gz)
    for split, (x, y) in (("train", train), ("test", test)):
        d = load_dataset(name, split=split, root=str(tmp_path))
        assert d.images.shape == (len(x), 1, 6, 5)
        assert torch.equal(d.images[:, 0], torch.from_numpy(x).float() / 255)
        assert torch.equal(d.labels, torch.from_numpy(y).long())
        assert (d.mean, d.std) == DATASET_STATS[name] and d.name == name and d.num_classes == 10
    assert as_class_data(tmp_path, split="test").name == (name if sub.endswith("/raw") else tmp_path.name)


def test_idx_dotted_names_and_detection_by_folder_name(tmp_path):
    folder = tmp_path / "MNIST"  # a plain folder named like the dataset
    x, y = fake_idx(10, 3)
    write_idx(folder / "train-images.idx3-ubyte", x)
    write_idx(folder / "train-labels.idx1-ubyte", y)
    d = as_class_data(folder)
    assert d.name == "mnist" and (d.mean, d.std) == DATASET_STATS["mnist"]


def test_idx_folder_of_unknown_origin_uses_its_train_stats(tmp_path):
    folder = tmp_path / "glyphs"
    write_idx_split(folder, "train", *fake_idx(20, 4, classes=4), gz=True)
    write_idx_split(folder, "t10k", *fake_idx(8, 5, classes=2), gz=True)
    train, test = as_class_data(folder), as_class_data(str(folder), split="test")
    assert train.name == "glyphs" and train.num_classes == 4 and test.num_classes == 4
    assert train.mean[0] == pytest.approx(float(train.images.mean()), abs=1e-6)
    assert (test.mean, test.std) == (train.mean, train.std)


@pytest.mark.parametrize("dtype", [">i4", ">f4"])
def test_read_idx_other_types(tmp_path, dtype):
    arr = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    out = read_idx(write_idx(tmp_path / "x-idx3", arr))
    assert out.shape == (2, 3, 4) and np.array_equal(out, arr) and out.dtype.isnative


def test_idx_corruption_errors(tmp_path):
    x, _ = fake_idx(4, 0)
    good = write_idx(tmp_path / "a", x).read_bytes()
    (tmp_path / "trunc").write_bytes(good[:-7])
    with pytest.raises(ValueError,
                       match=r"trunc: truncated IDX file: dims \(4, 6, 5\) need 120 data bytes, found 113"):
        read_idx(tmp_path / "trunc")
    (tmp_path / "extra").write_bytes(good + b"\0")
    with pytest.raises(ValueError, match="trailing bytes"):
        read_idx(tmp_path / "extra")
    (tmp_path / "header").write_bytes(good[:9])
    with pytest.raises(ValueError, match="truncated IDX file: header of 16 bytes, found 9"):
        read_idx(tmp_path / "header")
    (tmp_path / "magic").write_bytes(b"\x08\x03" + good[2:])
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "magic")
    (tmp_path / "gz").write_bytes(gzip.compress(good)[:-12])
    with pytest.raises(ValueError, match="gz: truncated or corrupt gzip"):
        read_idx(tmp_path / "gz")


def test_idx_count_mismatch_and_missing_files(tmp_path):
    x, y = fake_idx(5, 0)
    write_idx_split(tmp_path, "train", x, y[:4], gz=False)
    with pytest.raises(ValueError, match="4 labels in .* for 5 images"):
        load_dataset("mnist", root=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"no IDX files for split 'test'.*t10k-images-idx3-ubyte\[\.gz\]"):
        load_dataset("mnist", split="test", root=tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=r"apt-get install dataset-fashion-mnist.*FashionMNIST/raw"):
        load_dataset("fashion-mnist", root=empty)
    with pytest.raises(ValueError, match="root: mnist has no default location"):
        load_dataset("mnist")


@pytest.mark.skipif(not (FASHION_ROOT / "train-images-idx3-ubyte.gz").is_file(),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_real_fashion_mnist_default_root():
    train, test = load_dataset("fashion"), as_class_data(FASHION_ROOT, split="test")
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert train.class_counts().tolist() == [6000] * 10 and test.class_counts().tolist() == [1000] * 10
    assert int(train.labels[0]) == 9 and train.classes[9] == "Ankle boot"
    assert float(train.images.mean()) == pytest.approx(0.2861, abs=2e-4)
    assert float(train.images.std()) == pytest.approx(0.3530, abs=2e-4)
    assert test.name == "fashion-mnist" and (test.mean, test.std) == DATASET_STATS["fashion-mnist"]


# ---------------------------------------------------------------------------------------
# CIFAR, SVHN

def test_cifar10_python2_pickles(tmp_path):
    written = write_cifar10(tmp_path / "cifar-10-batches-py")
    train = load_dataset("cifar10", root=tmp_path)
    assert train.images.shape == (20, 3, 32, 32) and train.classes == [f"c{i}" for i in range(10)]
    data, labels = written["data_batch_2"]
    n, c, h, w = 1, 2, 5, 7  # batch 2, row 1: planes R, G, B of 32x32 each
    assert float(train.images[4 + n, c, h, w]) == pytest.approx(data[n, c * 1024 + h * 32 + w] / 255)
    assert train.labels[4:8].tolist() == labels
    assert (train.mean, train.std) == DATASET_STATS["cifar10"]
    test = as_class_data(tmp_path / "cifar-10-batches-py", split="test")
    assert test.name == "cifar10" and len(test) == 4
    assert torch.equal(test.images.flatten(1), torch.from_numpy(written["test_batch"][0]).float() / 255)


def test_cifar100_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for split, n in (("train", 6), ("test", 3)):
        (folder / split).write_bytes(pickle.dumps(  # a Python 3 re-save: also accepted
            {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
             b"fine_labels": [99, 0, 5, 7, 1, 2][:n], b"coarse_labels": [0] * n}, protocol=5))
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": [f"f{i}" for i in range(100)]}))
    d = as_class_data(tmp_path)
    assert d.name == "cifar100" and d.num_classes == 100 and d.classes[99] == "f99"
    assert d.labels.tolist() == [99, 0, 5, 7, 1, 2]
    assert (d.mean, d.std) == DATASET_STATS["cifar100"]
    assert len(load_dataset("cifar100", "test", root=folder)) == 3


class _Evil:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (self.target,))


def test_malicious_cifar_pickle_is_refused(tmp_path):
    write_cifar10(tmp_path)
    marker = tmp_path / "pwned"
    (tmp_path / "data_batch_3").write_bytes(
        pickle.dumps({"data": _Evil(str(marker)), "labels": []}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match=r"data_batch_3: refusing to load global posix\.mkdir"):
        load_dataset("cifar10", root=tmp_path)
    assert not marker.exists()


def test_cifar_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cifar10: expected the python batches.*cifar-10-batches-py"):
        load_dataset("cifar10", root=tmp_path)
    with pytest.raises(ValueError, match="root: cifar100 has no default location"):
        load_dataset("cifar100")


def test_svhn_mat(tmp_path):
    savemat = pytest.importorskip("scipy.io").savemat
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (32, 32, 3, 5), dtype=np.uint8)
    savemat(tmp_path / "train_32x32.mat", {"X": x, "y": np.array([[10], [1], [2], [10], [9]], np.uint8)})
    d = as_class_data(tmp_path)
    assert d.name == "svhn" and d.labels.tolist() == [0, 1, 2, 0, 9]
    assert torch.equal(d.images[3], torch.from_numpy(x[..., 3]).permute(2, 0, 1).float() / 255)
    assert (d.mean, d.std) == DATASET_STATS["svhn"]
    with pytest.raises(FileNotFoundError, match="svhn: expected test_32x32.mat"):
        load_dataset("svhn", "test", root=tmp_path)


# ---------------------------------------------------------------------------------------
# ImageFolder

def test_image_folder_train_test(tmp_path):
    rng = np.random.default_rng(3)
    pix = {}
    for split, n in (("train", 3), ("test", 1)):
        for cls in ("zebra", "ant"):
            for i in range(n):
                arr = rng.integers(0, 256, (4, 6, 3), dtype=np.uint8)
                pix[(split, cls, i)] = arr
                write_png(tmp_path / split / cls / f"{i}.png", arr, "RGB")
    (tmp_path / "train" / "ant" / "notes.txt").write_text("not an image")
    train, test = as_class_data(tmp_path), as_class_data(tmp_path, split="test")
    assert train.classes == ["ant", "zebra"] and train.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert train.images.shape == (6, 3, 4, 6) and train.name == tmp_path.name
    expect = torch.from_numpy(pix[("train", "zebra", 1)]).permute(2, 0, 1).float() / 255
    assert torch.equal(train.images[4], expect)
    assert train.mean[1] == pytest.approx(float(train.images[:, 1].mean()), abs=1e-6)
    assert (test.mean, test.std) == (train.mean, train.std) and test.labels.tolist() == [0, 1]


def test_image_folder_flat_modes_and_errors(tmp_path):
    root = tmp_path / "flat"
    write_png(root / "b" / "0.png", np.full((5, 5), 7, np.uint8), "L")
    write_png(root / "a" / "0.png", np.full((5, 5), 200, np.uint8), "L")
    gray = as_class_data(root)
    assert gray.images.shape == (2, 1, 5, 5) and gray.labels.tolist() == [0, 1]
    assert float(gray.images[0].max()) == pytest.approx(200 / 255)
    with pytest.raises(FileNotFoundError, match="split: 'test' requested but .* has no train/"):
        as_class_data(root, split="test")
    write_png(root / "c" / "0.png", np.zeros((5, 5, 3), np.uint8), "RGB")
    assert as_class_data(root).channels == 3  # one RGB image makes the set RGB
    write_png(root / "c" / "1.png", np.zeros((4, 5, 3), np.uint8), "RGB")
    with pytest.raises(ValueError, match=r"1\.png: image size 5x4 \(WxH\) differs from .*0\.png's 5x5"):
        as_class_data(root)
    (root / "c" / "1.png").unlink()
    (root / "d").mkdir()
    with pytest.raises(FileNotFoundError, match=r"d: class folder without images"):
        as_class_data(root)


def test_image_folder_test_split_extra_class_and_unknown_format(tmp_path):
    write_png(tmp_path / "train" / "a" / "0.png", np.zeros((3, 3), np.uint8), "L")
    write_png(tmp_path / "val" / "q" / "0.png", np.zeros((3, 3), np.uint8), "L")
    with pytest.raises(ValueError, match=r"class folders \['q'\] are not in"):
        as_class_data(tmp_path, split="test")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="cannot tell the format of .*ImageFolder"):
        as_class_data(empty)


# ---------------------------------------------------------------------------------------
# Tensors and Datasets

def test_tensor_inputs_convert():
    u8 = torch.randint(0, 256, (6, 5, 4), dtype=torch.uint8)
    d = as_class_data((u8, [0, 1, 2, 0, 1, 2]))
    assert d.images.shape == (6, 1, 5, 4) and torch.equal(d.images[:, 0], u8.float() / 255)
    assert d.name == "tensors" and d.num_classes == 3 and d.labels.dtype == torch.int64
    assert d.mean[0] == pytest.approx(float(d.images.mean()), abs=1e-6)
    assert d.std[0] == pytest.approx(float(d.images.std(correction=0)), abs=1e-6)
    hwc = np.random.default_rng(0).random((4, 7, 5, 3))  # channels-last float64
    d = as_class_data((hwc, np.array([3, 0, 1, 2], np.int32)))
    assert d.images.shape == (4, 3, 7, 5) and d.images.dtype == torch.float32
    assert torch.allclose(d.images, torch.from_numpy(hwc).permute(0, 3, 1, 2).float())
    assert len(d.mean) == 3 and d.num_classes == 4
    assert as_class_data(d) is d and as_class_data(d, device="cpu") is d
    slight = torch.full((2, 1, 3, 3), 1.01)  # an overshoot is refused, never clamped silently
    with pytest.raises(ValueError, match=r"images: float values span \[1\.01, 1\.01\]; .*clamp\(0, 1\) it first"):
        as_class_data((slight, [0, 1]))


class _MapDataset(torch.utils.data.Dataset):
    def __init__(self, items, classes=None):
        self.items, self.classes = items, classes

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


class _Stream(torch.utils.data.IterableDataset):
    def __iter__(self):
        return iter([(torch.zeros(1, 2, 2), 1), (torch.ones(1, 2, 2), 0)])


def test_dataset_inputs():
    from PIL import Image
    rgb = [np.random.default_rng(i).integers(0, 256, (4, 4, 3), dtype=np.uint8) for i in range(3)]
    pil = _MapDataset([(Image.fromarray(a, "RGB"), np.int64(i)) for i, a in enumerate(rgb)],
                      classes=["x", "y", "z", "w"])
    d = as_class_data(pil)
    assert d.images.shape == (3, 3, 4, 4) and d.classes == ["x", "y", "z", "w"] and d.num_classes == 4
    assert torch.equal(d.images[2], torch.from_numpy(rgb[2]).permute(2, 0, 1).float() / 255)
    assert d.name == "_MapDataset"
    tensors = _MapDataset([(torch.rand(1, 3, 3), torch.tensor(i % 2)) for i in range(4)])
    assert as_class_data(tensors).labels.tolist() == [0, 1, 0, 1]
    arrays = _MapDataset([(np.zeros((3, 3), np.uint8), 0), (np.ones((3, 3), np.uint8), 1)])
    assert as_class_data(arrays).images.shape == (2, 1, 3, 3)
    assert as_class_data(_Stream()).labels.tolist() == [1, 0]


@pytest.mark.parametrize("items,exc,msg", [
    ([], ValueError, "data: the dataset is empty"),
    ([torch.zeros(1, 2, 2)], TypeError, r"data\[0\]: expected an \(image, label\) pair"),
    ([(torch.zeros(1, 2, 2), 0.5)], TypeError, r"labels: data\[0\] has label 0.5"),
    ([(torch.zeros(1, 2, 2), True)], TypeError, r"labels: data\[0\] has label True"),
    ([(torch.zeros(1, 2, 2), 0), (torch.zeros(1, 3, 2), 1)], ValueError, r"data\[1\]: image of shape"),
    ([("img.png", 0)], TypeError, r"data\[0\]: expected the image as a tensor"),
    ([(torch.zeros(1, 2, 2), 0), (torch.zeros(1, 2, 2), 5)], ValueError,
     "label 5 at index 1 is out of range for 2 classes"),
])
def test_dataset_errors(items, exc, msg):
    with pytest.raises(exc, match=msg):
        as_class_data(_MapDataset(items, classes=["a", "b"]))


def _imgs(*shape, dtype=torch.float32, fill=0.5):
    return torch.full(shape, fill, dtype=dtype)


@pytest.mark.parametrize("images,labels,exc,msg", [
    (_imgs(2, 1, 1, 3, 3), [0, 1], ValueError, r"images: expected 4-D .* got shape \(2, 1, 1, 3, 3\)"),
    (_imgs(2, 9), [0, 1], ValueError, r"images: expected 4-D"),
    (_imgs(2, 5, 5, 5), [0, 1], ValueError, r"images: expected 4-D \(N, C, H, W\) with C in \{1, 3\}"),
    (_imgs(2, 1, 3, 3, dtype=torch.bool), [0, 1], TypeError, "images: expected numeric pixels"),
    (np.array([["a"], ["b"]]), [0, 1], TypeError, "images: expected a numeric array, got dtype <U1"),
    (_imgs(2, 1, 3, 3, fill=float("nan")), [0, 1], ValueError, "images: contains NaN or inf"),
    (_imgs(2, 1, 3, 3, fill=float("inf")), [0, 1], ValueError, "images: contains NaN or inf"),
    (torch.linspace(-2, 2, 18).view(2, 1, 3, 3), [0, 1], ValueError,
     r"images: float values span \[-2, 2\]; expected pixel space \[0, 1\]: they look normalised already"),
    (_imgs(2, 1, 3, 3, fill=200.0), [0, 1], ValueError, "look like 0..255 pixel values"),
    (_imgs(2, 1, 3, 3, dtype=torch.int32, fill=300), [0, 1], ValueError,
     r"images: integer values span \[300, 300\]; expected 0..255"),
    (_imgs(0, 1, 3, 3), [], ValueError, "images: the dataset is empty"),
    (_imgs(2, 1, 3, 3), [0.0, 1.0], TypeError, "labels: expected integer class labels, got dtype torch.float64"),
    (_imgs(2, 1, 3, 3), [[0], [1]], ValueError, r"labels: expected a 1-D \(N,\) tensor, got shape \(2, 1\)"),
    (_imgs(2, 1, 3, 3), [0, 1, 1], ValueError, "labels: 3 labels for 2 images"),
    (_imgs(2, 1, 3, 3), [0, -1], ValueError, "labels: negative label -1 at index 1"),
    (_imgs(2, 1, 3, 3), "ab", TypeError, "labels: expected a torch tensor or numpy array, got str"),
])
def test_tensor_validation(images, labels, exc, msg):
    with pytest.raises(exc, match=msg):
        as_class_data((images, labels))


@pytest.mark.parametrize("data,msg", [
    ((torch.zeros(1, 1, 2, 2),), r"data: expected an \(images, labels\) pair, got a tuple of length 1"),
    (5, "data: expected ClassData, a dataset name, a folder path"),
    (torch.zeros(2, 1, 3, 3), r"data: got a lone Tensor; pass \(images, labels\)"),
    ({"images": 1}, "data: expected ClassData"),
])
def test_unsupported_inputs(data, msg):
    with pytest.raises(TypeError, match=msg):
        as_class_data(data)


@pytest.mark.parametrize("change,exc,msg", [
    (dict(images=torch.zeros(2, 1, 3, 3, dtype=torch.float64)), TypeError, "images: expected a float32 tensor"),
    (dict(labels=torch.tensor([0, 1], dtype=torch.int32)), TypeError, "labels: expected an int64 tensor"),
    (dict(labels=torch.tensor([0, 2])), ValueError, "label 2 at index 1 is out of range for 2 classes"),
    (dict(num_classes=0), ValueError, "num_classes: expected a positive int"),
    (dict(mean=(0.5, 0.5)), ValueError, r"mean: expected 1 finite values \(one per channel\)"),
    (dict(std=(0.0,)), ValueError, r"std: expected positive values"),
    (dict(std=0.2), TypeError, "std: expected a sequence of 1 floats"),
    (dict(classes=["a"]), ValueError, "classes: 1 names for num_classes=2"),
])
def test_class_data_constructor_checks(change, exc, msg):
    args = dict(images=torch.zeros(2, 1, 3, 3), labels=torch.tensor([0, 1]), num_classes=2,
                mean=(0.5,), std=(0.25,), name="t")
    args.update(change)
    with pytest.raises(exc, match=msg):
        ClassData(**args)


# ---------------------------------------------------------------------------------------
# ClassData methods

def test_normalize_denormalize():
    d = ClassData(torch.rand(4, 3, 2, 2), torch.tensor([0, 1, 1, 0]), 2, (0.1, 0.2, 0.3),
                  (0.5, 0.25, 2.0), "t")
    x = torch.rand(5, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    y = d.normalize(x)
    assert y.dtype == torch.float64
    assert torch.allclose(y[:, 1], (x[:, 1] - 0.2) / 0.25)
    assert torch.allclose(d.denormalize(y), x)
    y.sum().backward()
    assert torch.allclose(x.grad[0, :, 0, 0], torch.tensor([2.0, 4.0, 0.5], dtype=torch.float64))
    assert d.normalize(torch.ones(3, 2, 2)).shape == (3, 2, 2)  # one image
    with pytest.raises(ValueError, match=r"x: normalize expects \(\.\.\., 3, H, W\), got shape \(2, 1, 2, 2\)"):
        d.normalize(torch.zeros(2, 1, 2, 2))
    with pytest.raises(TypeError, match="x: denormalize expects a floating tensor"):
        d.denormalize(torch.zeros(1, 3, 2, 2, dtype=torch.uint8))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=40), st.integers(0, 2))
def test_class_index_table_matches_a_loop(labels, extra_classes):
    c = max(labels) + 1 + extra_classes
    d = ClassData(torch.zeros(len(labels), 1, 1, 1), torch.tensor(labels), c, (0.0,), (1.0,), "t")
    table, counts = d.class_index_table()
    expected = [[i for i, y in enumerate(labels) if y == k] for k in range(c)]
    width = max(len(e) for e in expected)
    assert table.shape == (c, width) and table.dtype == torch.int64
    assert table.tolist() == [e + [-1] * (width - len(e)) for e in expected]
    assert counts.tolist() == [len(e) for e in expected] == d.class_counts().tolist()


def test_first_per_class_and_describe():
    labels = torch.tensor([2, 0, 1, 2, 0, 0, 1, 2])
    d = ClassData(torch.zeros(8, 1, 2, 2), labels, 3, (0.0,), (1.0,), "tiny", classes=["a", "b", "c"])
    assert d.first_per_class(2).tolist() == [[1, 4], [2, 6], [0, 3]]
    assert d.first_per_class(1).tolist() == [[1], [2], [0]]
    with pytest.raises(ValueError, match=r"n: 3 images per class requested but class 1 \('b'\) has only 2"):
        d.first_per_class(3)
    for bad in (0, True, 1.0):
        with pytest.raises(ValueError, match="n: expected a positive int"):
            d.first_per_class(bad)
    assert d.describe() == "tiny: 8 images, 1x2x2, 3 classes, 2-3 per class"
    assert d.to("cpu") is d and d.device == torch.device("cpu") and len(d) == 8


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_device_round_trip():
    d = load_dataset("digits", device="cuda")
    assert d.images.is_cuda and d.labels.is_cuda
    cpu = d.to("cpu")
    assert torch.equal(d.class_index_table()[0].cpu(), cpu.class_index_table()[0])
    assert torch.allclose(d.normalize(d.images).cpu(), cpu.normalize(cpu.images))
