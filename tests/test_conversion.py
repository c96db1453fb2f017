"""Input conversion is exact or refused: every image mode a Dataset or an image folder may hold
becomes [0, 1] floats exactly (the float32 nearest to value / 255, value / 65535, or the float
itself), or is refused with one line naming the mode and what to do; nothing is clipped, reduced to
8 bits or composited silently (dance_ext/data/pixels.py; docs/HOSTILE_INPUTS.md, "Input conversion").

Each image is written to tmp_path (lossless PNG or TIFF) and read back both as an image folder and
through a tiny torch Dataset that opens the files, as a user's Dataset would."""
import re
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

import dance_ext
from dance_ext.data import as_class_data
from test_backend_agreement import doc_ids
from test_hostile import no_work, snapshot

Image = pytest.importorskip("PIL.Image")
pytestmark = pytest.mark.usefixtures("single_thread")

H, W = 3, 4


def pixels(seed: int, *shape, high=256, dtype=np.uint8) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, high, shape).astype(dtype)


def unit(a: np.ndarray, full_scale: int) -> torch.Tensor:
    """(C, H, W) float32 nearest to a / full_scale (IEEE division of exact float32 operands)."""
    a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    return torch.from_numpy(a.astype(np.float32) / np.float32(full_scale))


def png16(path: Path, a: np.ndarray, colour_type: int) -> None:
    """A 16-bit PNG (Pillow writes 16 bits for grayscale only): colour type 2 RGB, 4 gray+alpha."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in a)
    header = struct.pack(">IIBBBBB", a.shape[1], a.shape[0], 16, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
                     + chunk(b"IEND", b""))


def palette_image(seed: int, transparent: int | None):
    index = pixels(seed, H, W, high=4)
    palette = pixels(seed + 10, 4, 3)
    img = Image.fromarray(index, "P")
    img.putpalette(palette.flatten().tolist())
    if transparent is not None:
        img.info["transparency"] = transparent
    return img, unit(palette[index], 255)


def with_alpha(seed: int, mode: str, alpha: int):
    colour = pixels(seed, H, W, *((3,) if mode == "RGBA" else ()))
    planes = np.dstack([colour, np.full((H, W), alpha, np.uint8)])
    return Image.fromarray(planes, mode), unit(colour, 255)


# Each maker: seed -> (PIL image, expected (C, H, W) float32, file suffix)
EXACT = {
    "1": lambda s: (Image.fromarray(pixels(s, H, W, high=2).astype(bool)), unit(pixels(s, H, W, high=2), 1), ".png"),
    "L": lambda s: (Image.fromarray(pixels(s, H, W), "L"), unit(pixels(s, H, W), 255), ".png"),
    "LA-opaque": lambda s: (*with_alpha(s, "LA", 255), ".png"),
    "P": lambda s: (*palette_image(s, None), ".png"),
    "P-transparency-unused": lambda s: (*palette_image(s, 7), ".png"),
    "RGB": lambda s: (Image.fromarray(pixels(s, H, W, 3), "RGB"), unit(pixels(s, H, W, 3), 255), ".png"),
    "RGBA-opaque": lambda s: (*with_alpha(s, "RGBA", 255), ".png"),
    "I;16": lambda s: (Image.fromarray(pixels(s, H, W, high=65536, dtype=np.uint16)),
                       unit(pixels(s, H, W, high=65536, dtype=np.uint16), 65535), ".png"),
    "F": lambda s: (Image.fromarray(pixels(s, H, W, high=1001).astype(np.float32) / 1000),
                    torch.from_numpy(pixels(s, H, W, high=1001).astype(np.float32)[None] / 1000), ".tif"),
}


def write_folder(root: Path, make) -> tuple[list[Path], torch.Tensor]:
    """Two images (classes a and b) from ``make``; their files and the expected (2, C, H, W)."""
    files, expected = [], []
    for label, seed in enumerate((1, 2)):
        img, want, suffix = make(seed)
        path = root / "ab"[label] / f"{seed}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(path)
        files.append(path)
        expected.append(want)
    return files, None if expected[0] is None else torch.stack(expected)


class Files(torch.utils.data.Dataset):
    """(image opened lazily from its file, label): what a user's Dataset of image files serves;
    ``item(image or entry, i)`` shapes an item otherwise."""

    def __init__(self, entries, item=None):
        self.entries, self.item = entries, item or (lambda img, i: (img, i))

    def __len__(self):
        return len(self.entries)

    def __getitem__(self, i):
        entry = self.entries[i]
        return self.item(Image.open(entry) if isinstance(entry, Path) else entry, i)


@pytest.mark.parametrize("mode", list(EXACT))
def test_mode_converts_exactly(mode, tmp_path):
    files, expected = write_folder(tmp_path / "set", EXACT[mode])
    for data in (tmp_path / "set", Files(files)):
        got = as_class_data(data).images
        assert got.dtype == torch.float32 and torch.equal(got, expected), (mode, data)


def pgm(path: Path, a: np.ndarray, maxval: int) -> None:
    """A binary PGM; Pillow opens 16-bit ones as mode I."""
    path.write_bytes(f"P5\n{a.shape[1]} {a.shape[0]}\n{maxval}\n".encode() + a.astype(">u2").tobytes())


SIXTEEN = np.array([[0, 1, 255, 256], [257, 32768, 65534, 65535], [12345, 54321, 2, 3]], np.uint16)


@pytest.mark.parametrize("suffix, mode", [(".png", "I;16"), (".pgm", "I")])
def test_sixteen_bit_files_keep_every_bit(suffix, mode, tmp_path):
    path = tmp_path / "set" / "a" / f"0{suffix}"
    path.parent.mkdir(parents=True)
    Image.fromarray(SIXTEEN).save(path) if suffix == ".png" else pgm(path, SIXTEEN, 65535)
    assert Image.open(path).mode == mode
    for data in (tmp_path / "set", Files([path])):
        got = as_class_data(data).images[0, 0]
        assert torch.equal(got, torch.from_numpy(SIXTEEN.astype(np.float32) / np.float32(65535)))
        assert len(torch.unique(got)) == SIXTEEN.size  # 256 and 257 stay apart: no reduction to 8 bits


def test_mixed_modes_in_one_set(tmp_path):
    """8- and 16-bit grayscale with RGB in one set: grays repeated over 3 channels, each exact."""
    gray8, gray16, rgb = pixels(1, H, W), pixels(2, H, W, high=65536, dtype=np.uint16), pixels(3, H, W, 3)
    files = [tmp_path / "set" / c / f for c, f in (("a", "0-g8.png"), ("a", "1-g16.png"), ("b", "rgb.png"))]
    for path, img in zip(files, (Image.fromarray(gray8, "L"), Image.fromarray(gray16), Image.fromarray(rgb, "RGB"))):
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(path)
    expected = torch.stack([unit(gray8, 255).expand(3, H, W), unit(gray16, 65535).expand(3, H, W), unit(rgb, 255)])
    assert torch.equal(as_class_data(tmp_path / "set").images, expected)
    mixed = Files(files[:2], item=lambda img, i: (img, 0))  # one gray set: no channel repeat
    assert torch.equal(as_class_data(mixed).images, expected[:2, :1])


@pytest.mark.parametrize("dtype, full_scale", [(np.uint8, 255), (np.uint16, 65535), (np.float32, None),
                                               (np.float64, None), (">u2", 65535)])
def test_numpy_pixels_convert_exactly(dtype, full_scale):
    if full_scale is None:
        a = np.random.default_rng(0).random((2, H, W)).astype(dtype)
        expected = torch.from_numpy(a.astype(np.float32))[:, None]
    else:
        a = pixels(0, 2, H, W, high=full_scale + 1, dtype=np.dtype(dtype))
        expected = torch.from_numpy(a.astype(np.float32) / np.float32(full_scale))[:, None]
    for data in ((a, [0, 1]), Files([0, 1], item=lambda _, i: (a[i], i))):
        assert torch.equal(as_class_data(data).images, expected)


# ---------------------------------------------------------------------------------------
# Refused, with one line naming the mode (or file) and what to do, before any work


def transparent(mode):
    return lambda s: (with_alpha(s, mode, 128)[0], None, ".png")


REFUSED = {
    "rgba-transparent": (transparent("RGBA"), r"PIL mode RGBA has transparent pixels \(alpha down to 128\); composite"),
    "la-transparent": (transparent("LA"), r"PIL mode LA has transparent pixels .*composite"),
    "p-transparent": (lambda s: (palette_image(s, 0)[0], None, ".png"),
                      r"PIL mode P has transparent pixels \(alpha down to 0\)"),
    "cmyk": (lambda s: (Image.fromarray(pixels(s, H, W, 4), "CMYK"), None, ".tif"),
             r"PIL mode CMYK has no exact conversion to RGB or grayscale pixels; convert it .*ImageCms"),
    "i-32-bit": (lambda s: (Image.fromarray(pixels(s, H, W, dtype=np.int32)), None, ".tif"),
                 r"PIL mode I \(32-bit integers\) does not declare its range; convert it to I;16"),
    "f-out-of-range": (lambda s: (Image.fromarray(np.full((H, W), 2.5, np.float32)), None, ".tif"),
                       r"\(PIL mode F\): float values span \[2\.5, 2\.5\]; expected pixel space \[0, 1\]"),
    "f-overshoot": (lambda s: (Image.fromarray(np.full((H, W), 1.01, np.float32)), None, ".tif"),
                    r"\(PIL mode F\): float values span .* not clipped silently: clamp\(0, 1\) it first"),
}


def refused_folder(root: Path, case: str) -> Path:
    if case == "pgm-12-bit":  # Pillow rescales 0..4095 to 0..65535, rounding: not exact
        for c in "ab":
            (root / c).mkdir(parents=True)
            pgm(root / c / "0.pgm", pixels(ord(c), H, W, high=4096, dtype=np.uint16), 4095)
        return root
    if case in ("png-16-bit-rgb", "png-16-bit-la"):
        channels, colour_type = (3, 2) if case.endswith("rgb") else (2, 4)
        for c in "ab":
            (root / c).mkdir(parents=True)
            png16(root / c / "0.png", pixels(ord(c), H, W, channels, high=65536, dtype=np.uint16), colour_type)
        return root
    write_folder(root, REFUSED[case][0])
    return root


REFUSED_CASES = [*REFUSED, "png-16-bit-rgb", "png-16-bit-la", "pgm-12-bit"]
WIDE = {"png-16-bit-rgb": r"a 16-bit RGB image, which Pillow reads as 8 bits; refused rather than truncated",
        "png-16-bit-la": r"a 16-bit LA image, which Pillow reads as 8 bits",
        "pgm-12-bit": r"PIL mode I \(32-bit integers\) does not declare its range"}


@pytest.mark.parametrize("via", ["folder", "dataset"])
@pytest.mark.parametrize("case", REFUSED_CASES)
def test_conversion_refused(case, via, tmp_path, monkeypatch):
    root = refused_folder(tmp_path / "set", case)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    data, where = (str(root), r"/a/\d+\.\w+") if via == "folder" else (Files(files), r"data\[0\] image")
    before = snapshot(root)
    no_work(monkeypatch)
    with pytest.raises(ValueError) as info:
        dance_ext.condense(data, ipc=1, method="dm", iterations=1, progress=False)
    message = str(info.value)
    assert "\n" not in message
    assert re.search(where + ".*" + WIDE.get(case, REFUSED.get(case, ("", ""))[1]), message), message
    assert snapshot(root) == before


@pytest.mark.parametrize("mode", ["I", "YCbCr", "HSV", "LAB"])
def test_in_memory_modes_refused(mode):
    img = Image.fromarray(pixels(0, H, W, dtype=np.int32)) if mode == "I" else Image.new(mode, (W, H))
    with pytest.raises(ValueError, match=rf"data\[0\] image: PIL mode {mode} "):
        as_class_data(Files([0], item=lambda _, i: (img, 0)))


@pytest.mark.parametrize("item, got", [
    (lambda img, i: (img, i, "extra"), "a tuple of 3"),
    (lambda img, i: [img], "a list of 1"),
    (lambda img, i: img, "PngImageFile"),
    (lambda img, i: {"image": img, "label": i}, "dict"),
])
def test_item_not_a_pair_refused(item, got, tmp_path):
    files, _ = write_folder(tmp_path / "set", EXACT["L"])
    with pytest.raises(TypeError, match=rf"^data\[0\]: expected an \(image, label\) pair, got {got}$"):
        as_class_data(Files(files, item=item))


# ---------------------------------------------------------------------------------------
# evaluate((images, labels)) checks the range as condense does (one rule, data/pixels.py)

@pytest.mark.parametrize("scale, shift, hint", [
    (255.0, 0.0, "they look like 0..255 pixel values: divide by 255"),
    (4.0, -2.0, r"they look normalised already \(\(x - mean\) / std\)"),
    (2.0, -1.0, r"they look normalised already"),  # Normalize(0.5, 0.5): [-1, 1]
])
def test_evaluate_pair_range_checked_like_condense(scale, shift, hint, monkeypatch):
    images = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * scale + shift
    no_work(monkeypatch)
    hints = []
    for call in (lambda: dance_ext.evaluate((images, torch.arange(3)), "digits", runs=1, epochs=1, progress=False),
                 lambda: dance_ext.condense((images, torch.arange(3)), ipc=1, method="dm", progress=False)):
        with pytest.raises(ValueError, match=rf"float values span .*; expected pixel space \[0, 1\].*: {hint}") as info:
            call()
        hints.append(str(info.value).rsplit(": ", 1)[1])
    assert hints[0] == hints[1]  # one rule (data/pixels.py), one wording


def test_evaluate_pair_may_overshoot_like_a_synthetic_set():
    """A synthetic set is unclamped after its last step: evaluate takes it as it is, up to 0.5 outside
    [0, 1], where condense refuses real data that is not exactly in [0, 1]."""
    images = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 1.6 - 0.3
    got, labels, _ = evaluate_module()._unpack((images, torch.arange(3)))
    assert got is images and labels.tolist() == [0, 1, 2]
    refused = r"images: float values span \[-0\.\d+, 1\.\d+\]; expected pixel space \[0, 1\]:"
    with pytest.raises(ValueError, match=refused):
        as_class_data((images, torch.arange(3)))


def evaluate_module():
    return sys.modules["dance_ext.evaluate"]


def test_doc_rows_are_the_cases():
    """docs/HOSTILE_INPUTS.md, "Input conversion": its refusal rows are exactly the refused cases."""
    assert doc_ids("Input conversion") == set(REFUSED_CASES)
