"""The six 128×128 ImageNet subsets of DANCE Table 2, read from an ImageNet folder in
ImageFolder layout (train/<wnid>/*.JPEG, val/<wnid>/*.JPEG; the test split is val).

Each image: shorter side resized to 128 (bilinear, antialiased), then the centre 128×128
crop: torchvision's Resize(128) + CenterCrop(128) on PIL images, as DANCE's loader
(ALGORITHMS.md §3.2). ImageNet statistics. Labels follow the order of the class list."""
from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from ..classdata import ClassData
from ..convert import _from_arrays
from ..images import read_images
from ..registry import DATASET_STATS, register

SIZE = 128
LAYOUT = "train/<wnid>/*.JPEG and val/<wnid>/*.JPEG"
_SUFFIXES = {".jpeg", ".jpg", ".png"}

# DANCE's misc/class<subset>.txt: MTT's subsets as wnids, in label order (imagenette and
# imagewoof from the same lists as published with RDED/NCFM, which match MTT's ImageNet
# indices). imagefruit's last class is n07760859 (custard apple) in these files, where MTT's
# index list has 948 (Granny Smith, n07742313): we follow the files DANCE reads.
SUBSETS: dict[str, tuple[tuple[str, str], ...]] = {
    "imagenette": (("n01440764", "tench"), ("n02102040", "English springer"), ("n02979186", "cassette player"),
                   ("n03000684", "chain saw"), ("n03028079", "church"), ("n03394916", "French horn"),
                   ("n03417042", "garbage truck"), ("n03425413", "gas pump"), ("n03445777", "golf ball"),
                   ("n03888257", "parachute")),
    "imagewoof": (("n02096294", "Australian terrier"), ("n02093754", "Border terrier"), ("n02111889", "Samoyed"),
                  ("n02088364", "beagle"), ("n02086240", "Shih-Tzu"), ("n02089973", "English foxhound"),
                  ("n02087394", "Rhodesian ridgeback"), ("n02115641", "dingo"), ("n02099601", "golden retriever"),
                  ("n02105641", "Old English sheepdog")),
    "imagefruit": (("n07753275", "pineapple"), ("n07753592", "banana"), ("n07745940", "strawberry"),
                   ("n07747607", "orange"), ("n07749582", "lemon"), ("n07768694", "pomegranate"),
                   ("n07753113", "fig"), ("n07720875", "bell pepper"), ("n07718472", "cucumber"),
                   ("n07760859", "custard apple")),
    "imagemeow": (("n02123045", "tabby cat"), ("n02123159", "tiger cat"), ("n02123394", "Persian cat"),
                  ("n02123597", "Siamese cat"), ("n02124075", "Egyptian cat"), ("n02129165", "lion"),
                  ("n02129604", "tiger"), ("n02128925", "jaguar"), ("n02128757", "snow leopard"),
                  ("n02127052", "lynx")),
    "imagesquawk": (("n01806143", "peacock"), ("n02007558", "flamingo"), ("n01818515", "macaw"),
                    ("n02051845", "pelican"), ("n02056570", "king penguin"), ("n01614925", "bald eagle"),
                    ("n01843383", "toucan"), ("n01518878", "ostrich"), ("n01860187", "black swan"),
                    ("n01819313", "sulphur-crested cockatoo")),
    "imageyellow": (("n02206856", "bee"), ("n12057211", "yellow lady's slipper"), ("n07753592", "banana"),
                    ("n07749582", "lemon"), ("n12144580", "corn"), ("n04146614", "school bus"),
                    ("n03530642", "honeycomb"), ("n02129165", "lion"), ("n01773797", "garden spider"),
                    ("n01531178", "goldfinch")),
}


def resize_crop(image, size: int = SIZE):
    """torchvision's Resize(size) + CenterCrop(size) on a PIL image: the shorter side becomes
    ``size`` (the longer one int(size · long / short)), then the centred size×size crop."""
    from PIL import Image

    w, h = image.size
    short, long = min(w, h), max(w, h)
    new_long = int(size * long / short)
    new = (size, new_long) if w <= h else (new_long, size)
    if new != (w, h):
        image = image.resize(new, Image.BILINEAR)  # Pillow antialiases when it shrinks
    left, top = int(round((new[0] - size) / 2.0)), int(round((new[1] - size) / 2.0))
    return image.crop((left, top, left + size, top + size))


def _index(name: str, root: Path, split_dir: str) -> tuple[list[Path], list[int]]:
    folder = root / split_dir
    wnids = [w for w, _ in SUBSETS[name]]
    missing = [w for w in wnids if not (folder / w).is_dir()]
    if missing:
        raise FileNotFoundError(f"{name}: {len(missing)} of its {len(wnids)} wnid folders are missing under "
                                f"{folder} (first: {missing[0]}); expected ImageNet's layout {LAYOUT}")
    files, labels = [], []
    for c, wnid in enumerate(wnids):
        found = sorted(p for p in (folder / wnid).iterdir() if p.suffix.lower() in _SUFFIXES)
        if not found:
            raise FileNotFoundError(f"{name}: {folder / wnid} holds no images; expected ImageNet's layout {LAYOUT}")
        files += found
        labels += [c] * len(found)
    return files, labels


def _load_subset(name: str, split: str, root: Path | None) -> ClassData:
    if root is None:
        raise ValueError(f"root: {name} has no default location; pass root= an ImageNet folder ({LAYOUT})")
    train = _index(name, root, "train")
    test = _index(name, root, "val")  # both checked: a broken tree fails before any work
    files, labels = train if split == "train" else test
    images = read_images(files, "RGB", transform=resize_crop)
    return _from_arrays(images, np.asarray(labels, np.int64), name=name, num_classes=len(SUBSETS[name]),
                        stats=DATASET_STATS["imagenet"], classes=[n for _, n in SUBSETS[name]])


for _name in SUBSETS:
    register(_name, partial(_load_subset, _name), stats=DATASET_STATS["imagenet"])
