"""The papers' datasets in their distributed layouts (TinyImageNet, DANCE's ImageNet subsets),
explicit names and statistics for folders, and dataset objects users already have
(torchvision's, recognised by class name and attributes; Hugging Face datasets), all on
small data made here."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dance_ext.data import DATASET_STATS, as_class_data, load_dataset
from dance_ext.data.readers.imagenet_subsets import SUBSETS
from dance_ext.protocols import IMAGENET_SUBSETS

IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
TINY_WNIDS = ["n09999999", "n01443537", "n02099601"]  # wnids.txt order is not label order


def write_image(path: Path, size_wh, seed: int, mode: str = "RGB", fmt: str = "PNG") -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (size_wh[1], size_wh[0]) + ((3,) if mode == "RGB" else ())
    arr = rng.integers(0, 256, shape, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode).save(path, format=fmt)
    return arr


def tiny_tree(root: Path, annotations: bool = True) -> Path:
    """TinyImageNet's layout with 3 classes: 2 train images each (one grey JPEG), 3 val images."""
    (root / "wnids.txt").parent.mkdir(parents=True, exist_ok=True)
    (root / "wnids.txt").write_text("\n".join(TINY_WNIDS) + "\n")
    (root / "words.txt").write_text("n01443537\tgoldfish, Carassius auratus\nn02099601\tgolden retriever\n")
    for k, wnid in enumerate(TINY_WNIDS):
        for i in range(2):
            mode = "L" if (k, i) == (1, 1) else "RGB"
            write_image(root / "train" / wnid / "images" / f"{wnid}_{i}.JPEG", (64, 64), 10 * k + i, mode, "JPEG")
    lines = []
    for i, wnid in enumerate(["n02099601", "n09999999", "n02099601"]):
        write_image(root / "val" / "images" / f"val_{i}.JPEG", (64, 64), 100 + i, fmt="JPEG")
        lines.append(f"val_{i}.JPEG\t{wnid}\t0\t0\t63\t63")
    if annotations:
        (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return root


def pil_rgb(path: Path) -> torch.Tensor:
    with Image.open(path) as im:
        return torch.from_numpy(np.asarray(im.convert("RGB")).copy()).permute(2, 0, 1).float() / 255


def test_tinyimagenet_distributed_layout(tmp_path):
    root = tiny_tree(tmp_path / "tiny-imagenet-200")
    train = load_dataset("tinyimagenet", root=tmp_path)  # the archive's own folder inside root
    assert train.name == "tinyimagenet" and (train.mean, train.std) == IMAGENET_STATS
    assert train.images.shape == (6, 3, 64, 64) and train.num_classes == 3
    assert train.classes == ["goldfish", "golden retriever", "n09999999"]  # wnid order, words.txt names
    assert train.labels.tolist() == [0, 0, 1, 1, 2, 2]
    grey = root / "train" / "n02099601" / "images" / "n02099601_1.JPEG"
    assert torch.equal(train.images[3], pil_rgb(grey))  # a grey JPEG becomes RGB
    test = as_class_data(root, split="test")  # detected as TinyImageNet; test = val
    assert test.name == "tinyimagenet" and test.labels.tolist() == [1, 2, 1]
    assert torch.equal(test.images[1], pil_rgb(root / "val" / "images" / "val_1.JPEG"))
    assert load_dataset("Tiny-ImageNet", "test", root=root).labels.tolist() == [1, 2, 1]


def test_tinyimagenet_bad_trees(tmp_path):
    root = tiny_tree(tmp_path / "t", annotations=False)
    with pytest.raises(FileNotFoundError, match=r"val_annotations\.txt is missing; expected under"):
        load_dataset("tinyimagenet", "train", root=root)
    (root / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn00000001\t0\t0\t1\t1\n")
    with pytest.raises(ValueError, match=r"line 1: wnid 'n00000001' is not in wnids\.txt"):
        load_dataset("tinyimagenet", root=root)
    (root / "val" / "val_annotations.txt").write_text("gone.JPEG\tn01443537\t0\t0\t1\t1\n")
    with pytest.raises(FileNotFoundError, match=r"gone\.JPEG is missing"):
        load_dataset("tinyimagenet", root=root)
    with pytest.raises(ValueError, match="root: tinyimagenet has no default location"):
        load_dataset("tinyimagenet")


def imagenet_tree(root: Path, subset: str = "imagewoof", skip: int = 0, skip_in=("train", "val")) -> Path:
    """ImageNet's ImageFolder layout holding ``subset``'s wnids, one image per class and split,
    of odd sizes, but the last ``skip`` wnids in the splits ``skip_in``; plus a class of no subset."""
    wnids = [w for w, _ in SUBSETS[subset]]
    for k, wnid in enumerate(wnids):
        if k < len(wnids) - skip or "train" not in skip_in:
            write_image(root / "train" / wnid / "a.JPEG", (150, 130) if k % 2 else (130, 170), k)
        if k < len(wnids) - skip or "val" not in skip_in:
            write_image(root / "val" / wnid / "b.JPEG", (128, 128), 50 + k)
    write_image(root / "train" / "n00000007" / "x.JPEG", (140, 140), 99)
    return root


def test_imagenet_subset_resize_crop_labels(tmp_path):
    root = imagenet_tree(tmp_path / "imagenet")
    train = load_dataset("imagewoof", root=root)
    assert train.name == "imagewoof" and train.images.shape == (10, 3, 128, 128)
    assert train.labels.tolist() == list(range(10)) and train.classes[0] == "Australian terrier"
    assert (train.mean, train.std) == IMAGENET_STATS
    with Image.open(root / "train" / SUBSETS["imagewoof"][1][0] / "a.JPEG") as im:  # 150×130 (W×H)
        # Resize(128): shorter side 128, longer int(128·150/130) = 147; CenterCrop: left round(19/2) = 10
        expect = im.convert("RGB").resize((147, 128), Image.BILINEAR).crop((10, 0, 138, 128))
    assert torch.equal(train.images[1], torch.from_numpy(np.asarray(expect).copy()).permute(2, 0, 1).float() / 255)
    with Image.open(root / "train" / SUBSETS["imagewoof"][0][0] / "a.JPEG") as im:  # 130×170: 128 × int(167.4)
        expect = im.convert("RGB").resize((128, 167), Image.BILINEAR).crop((0, 20, 128, 148))
    assert torch.equal(train.images[0], torch.from_numpy(np.asarray(expect).copy()).permute(2, 0, 1).float() / 255)
    test = as_class_data(root, split="test", name="imagewoof")  # a built-in name reads the folder its way
    assert test.name == "imagewoof" and test.labels.tolist() == list(range(10))


def test_imagenet_subset_tables():
    assert tuple(SUBSETS) == IMAGENET_SUBSETS
    for name, classes in SUBSETS.items():
        wnids = [w for w, _ in classes]
        assert len(set(wnids)) == 10 and all(len(w) == 9 and w[0] == "n" and w[1:].isdigit() for w in wnids), name
    assert SUBSETS["imagenette"][0] == ("n01440764", "tench")


def test_imagenet_subset_bad_trees(tmp_path):
    root = imagenet_tree(tmp_path / "imagenet", skip=3)
    with pytest.raises(FileNotFoundError, match=r"imagewoof: 3 of its 10 wnid folders are missing under .*train "
                                                r"\(first: n02115641\)"):
        load_dataset("imagewoof", "test", root=root)
    with pytest.raises(ValueError, match=r"unknown dataset 'imagewolf' \(did you mean 'imagewoof'\?\)"):
        load_dataset("imagewolf", root=root)


def test_folder_with_explicit_name_and_statistics(tmp_path):
    for cls in ("a", "b"):
        write_image(tmp_path / "set" / cls / "0.png", (5, 4), ord(cls))
    named = as_class_data(tmp_path / "set", name="mine", mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    assert named.name == "mine" and named.mean == (0.5, 0.5, 0.5) and named.std == (0.25,) * 3
    as_cifar = as_class_data((named.images, named.labels), name="CIFAR10")
    assert as_cifar.name == "cifar10" and (as_cifar.mean, as_cifar.std) == DATASET_STATS["cifar10"]
    with pytest.raises(ValueError, match="mean/std: pass both"):
        as_class_data(tmp_path / "set", mean=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match=r"mean: expected 3 finite values"):
        as_class_data(tmp_path / "set", mean=(0.5,), std=(0.2,))


# ---------------------------------------------------------------------------------------
# torchvision objects, faked with torchvision's class names and attributes

class _NotItemwise(torch.utils.data.Dataset):
    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        raise AssertionError("read item by item")


class MNIST(_NotItemwise):
    def __init__(self, n=6):
        self.data = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8)
        self.targets = torch.arange(n) % 10
        self.classes = [f"{i} - digit" for i in range(10)]


class FashionMNIST(MNIST):
    pass


class CIFAR10(_NotItemwise):
    def __init__(self, n=6, classes=10):
        self.data = np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        self.targets = [i % classes for i in range(n)]
        self.classes = [f"c{i}" for i in range(classes)]


class CIFAR100(CIFAR10):
    def __init__(self):
        super().__init__(n=4, classes=100)


class SVHN(_NotItemwise):
    def __init__(self):
        self.data = np.random.default_rng(1).integers(0, 256, (5, 3, 32, 32), dtype=np.uint8)
        self.labels = np.array([0, 9, 3, 3, 1])


class ImageFolder(_NotItemwise):
    def __init__(self, root: Path):
        self.root, self.classes = str(root), ["ant", "bee"]
        self.samples = [(str(root / "ant" / "0.png"), 0), (str(root / "bee" / "0.png"), 1)]
        self.data = None


@pytest.mark.parametrize("make,name,shape,label_of", [
    (MNIST, "mnist", (6, 1, 28, 28), lambda d: d.targets.tolist()),
    (FashionMNIST, "fashion-mnist", (6, 1, 28, 28), lambda d: d.targets.tolist()),
    (CIFAR10, "cifar10", (6, 3, 32, 32), lambda d: d.targets),
    (CIFAR100, "cifar100", (4, 3, 32, 32), lambda d: d.targets),
    (SVHN, "svhn", (5, 3, 32, 32), lambda d: d.labels.tolist()),
])
def test_torchvision_objects_read_whole_arrays(make, name, shape, label_of):
    obj = make()
    data = as_class_data(obj)
    assert data.name == name and tuple(data.images.shape) == shape
    assert (data.mean, data.std) == DATASET_STATS[name] and data.labels.tolist() == label_of(obj)
    assert data.num_classes == (100 if name == "cifar100" else 10) and len(data.classes) == data.num_classes
    raw = torch.as_tensor(obj.data)
    first = raw[0] if name != "cifar10" and name != "cifar100" else raw[0].permute(2, 0, 1)
    assert torch.equal(data.images[0].reshape(first.shape), first.float() / 255)


def test_torchvision_image_folder_object(tmp_path):
    ant = write_image(tmp_path / "ant" / "0.png", (6, 4), 0)
    write_image(tmp_path / "bee" / "0.png", (6, 4), 1, mode="L")  # torchvision's loader makes it RGB
    data = as_class_data(ImageFolder(tmp_path))
    assert data.name == tmp_path.name and data.classes == ["ant", "bee"] and data.labels.tolist() == [0, 1]
    assert data.images.shape == (2, 3, 4, 6)
    assert torch.equal(data.images[0], torch.from_numpy(ant).permute(2, 0, 1).float() / 255)


# ---------------------------------------------------------------------------------------
# Hugging Face datasets

def _pil_images(n, size=(4, 5)):
    return [Image.fromarray(write_array(i, size), "RGB") for i in range(n)]


def write_array(seed, size):
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def test_hugging_face_dataset_and_dict():
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"img": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b", "c"])})
    train = datasets.Dataset.from_dict({"img": _pil_images(4), "label": [2, 0, 1, 0]}, features=features)
    data = as_class_data(train)
    assert data.name == "huggingface" and data.classes == ["a", "b", "c"] and data.labels.tolist() == [2, 0, 1, 0]
    assert torch.equal(data.images[1], torch.from_numpy(write_array(1, (4, 5))).permute(2, 0, 1).float() / 255)
    test = datasets.Dataset.from_dict({"img": _pil_images(2), "label": [1, 1]}, features=features,
                                      info=datasets.DatasetInfo(dataset_name="cifar10", features=features))
    splits = datasets.DatasetDict({"train": train, "validation": test})
    picked = as_class_data(splits, split="test")  # "test" falls back to validation
    assert picked.name == "cifar10" and (picked.mean, picked.std) == DATASET_STATS["cifar10"]
    assert picked.labels.tolist() == [1, 1] and picked.num_classes == 3
    with pytest.raises(ValueError, match=r"needs an 'image' or 'img' column and a 'label' column; it has"):
        as_class_data(datasets.Dataset.from_dict({"pixels": [[0]], "label": [0]}))


class _DuckHF:
    """What is read of a Hugging Face Dataset: column access, column_names, features."""

    def __init__(self, images, labels, names):
        self.columns = {"image": images, "label": labels}
        self.column_names = list(self.columns)
        self.features = {"label": type("ClassLabel", (), {"names": names})()}

    def __getitem__(self, key):
        return self.columns[key]

    def __len__(self):
        return len(self.columns["label"])


def test_hugging_face_duck_type_grey_and_rgb():
    grey = Image.fromarray(np.full((4, 5), 9, np.uint8), "L")
    data = as_class_data(_DuckHF([grey, *_pil_images(1)], [1, 0], ["x", "y"]))
    assert data.images.shape == (2, 3, 4, 5) and data.classes == ["x", "y"]  # one grey image joins RGB
    assert torch.allclose(data.images[0], torch.full((3, 4, 5), 9 / 255))
