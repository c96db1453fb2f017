"""Exact pixels: PIL images to arrays without loss, and the one range rule for float pixels.

Every image becomes [0, 1] floats exactly, or is refused with one line naming its mode and what to
do; nothing is clipped, rounded to 8 bits or composited silently (docs/HOSTILE_INPUTS.md, "Input
conversion", has the table):

* 8-bit modes ``1``, ``L``, ``P`` (through its palette), ``RGB``, ``RGBX``: value / 255;
* with alpha (``LA``, ``La``, ``PA``, ``RGBA``, ``RGBa``, ``P`` with transparency): the alpha is
  dropped when every pixel is opaque, else refused;
* 16-bit modes ``I;16``, ``I;16L``, ``I;16B``, ``I;16N`` (16-bit grayscale PNG or TIFF): / 65535;
* ``I`` (32-bit integers): / 65535 when decoded from 16-bit data (a 16-bit file), else refused,
  since its range is not declared;
* ``F`` (32-bit floats): as float pixels, which must lie in [0, 1];
* any other mode (``CMYK``, ``YCbCr``, ``LAB``, ``HSV``, …) and a colour file Pillow would reduce to
  8 bits (16-bit RGB or gray+alpha PNG): refused.
"""
from __future__ import annotations

import numpy as np
import torch

from .classdata import check_finite

_EIGHT_BIT = {"1": "L", "L": "L", "P": "RGB", "RGB": "RGB", "RGBX": "RGB"}
_ALPHA = {"LA": "L", "La": "L", "PA": "RGB", "RGBA": "RGB", "RGBa": "RGB"}
_SIXTEEN_BIT = {"I;16", "I;16L", "I;16B", "I;16N"}
_OVERSHOOT = 0.05


# How far a synthetic set may leave [0, 1]: condensed images are unclamped after the last step
# (DM's overshoot by ~0.3 on digits); normalised or 0..255 data goes further.
SYNTHETIC_SLACK = 0.5


def check_pixel_range(x: torch.Tensor, arg: str, slack: float = 0.0) -> None:
    """Float pixels must be finite and in [0, 1] (``slack``: in [-slack, 1 + slack]): normalised,
    0..255 and overshooting data are refused (nothing is clamped), each with what to do."""
    check_finite(x, arg)
    if x.numel() == 0:
        return
    lo, hi = (float(v) for v in torch.aminmax(x))
    if lo >= -slack and hi <= 1 + slack:
        return
    if lo >= -_OVERSHOOT and hi <= 1 + _OVERSHOOT:
        hint = "a slight overshoot (e.g. from interpolation) is not clipped silently: clamp(0, 1) it first"
    elif lo >= -_OVERSHOOT and hi <= 255:
        hint = "they look like 0..255 pixel values: divide by 255 or pass uint8"
    else:
        hint = "they look normalised already ((x - mean) / std): pass unnormalised pixels"
    span = "[0, 1]" if not slack else f"[0, 1] (± {slack} for a synthetic set)"
    raise ValueError(f"{arg}: float values span [{lo:.4g}, {hi:.4g}]; expected pixel space {span}: {hint}")


def unit_float(a: np.ndarray) -> np.ndarray:
    """uint8 / 255 and uint16 / 65535 as float32 (correctly rounded, like torch's division);
    floats as float32."""
    if a.dtype.kind == "u":
        return a.astype(np.float32) / np.float32(np.iinfo(a.dtype).max)
    return a.astype(np.float32)


def stack_pixels(arrays: list[np.ndarray]) -> np.ndarray:
    """(H, W) or (H, W, 3) arrays as one (N, C, H, W) batch, channels first so that no image height
    reads as a channel count; mixed dtypes (8- and 16-bit images, floats) each go to [0, 1] first."""
    if len({a.dtype for a in arrays}) > 1:
        arrays = [unit_float(a) for a in arrays]
    batch = np.stack(arrays)
    return batch[:, None] if batch.ndim == 3 else batch.transpose(0, 3, 1, 2)


def pil_pixels(img, where: str) -> np.ndarray:
    """The pixels of PIL image ``img`` exactly: (H, W) or (H, W, 3), uint8, uint16 or float32."""
    mode = img.mode
    if mode in _EIGHT_BIT and not (mode == "P" and "transparency" in img.info):
        _refuse_reduced_depth(img, where)
        return np.asarray(img.convert(_EIGHT_BIT[mode]))
    if mode in _ALPHA or mode == "P":
        return _opaque(img, where)
    if mode in _SIXTEEN_BIT:
        return np.asarray(img).astype(np.uint16)
    if mode == "I":
        return _sixteen_bit_ints(img, where)
    if mode == "F":
        a = np.array(img, dtype=np.float32)
        check_pixel_range(torch.from_numpy(a), f"{where} (PIL mode F)")
        return a
    raise ValueError(f"{where}: PIL mode {mode} has no exact conversion to RGB or grayscale pixels; convert "
                     "it to RGB or L yourself, knowing its colour space (e.g. PIL.ImageCms for CMYK)")


def _opaque(img, where: str) -> np.ndarray:
    """An image with alpha as its colour pixels, when every pixel is opaque."""
    mode = img.mode
    if mode in ("P", "PA"):
        img = img.convert("RGBA")  # through the palette, transparency as alpha: exact
    _refuse_reduced_depth(img, where)
    alpha = img.getchannel(img.getbands()[-1])
    low = alpha.getextrema()[0]
    if low < 255:
        raise ValueError(f"{where}: PIL mode {mode} has transparent pixels (alpha down to {low}); "
                         "composite it onto a background (e.g. Image.alpha_composite), then pass RGB or L")
    return np.asarray(img.convert(_ALPHA[img.mode]))


def _sixteen_bit_ints(img, where: str) -> np.ndarray:
    """A mode I image decoded from 16-bit data as uint16; any other I image is refused."""
    if not any(raw.startswith("I;16") for raw in _tile_rawmodes(img)):
        raise ValueError(f"{where}: PIL mode I (32-bit integers) does not declare its range; convert it to "
                         "I;16 (values 0..65535) or L (0..255) first")
    return np.asarray(img).astype(np.uint16)


def _tile_rawmodes(img) -> list[str]:
    """The raw modes the decoder will read, while the image is not loaded yet (else none)."""
    return [str(t.args[0] if isinstance(t.args, tuple) else t.args) for t in getattr(img, "tile", None) or []]


_WIDE_COLOUR = ("RGB;16", "RGBA;16", "RGBX;16", "LA;16")  # 16 bits per channel (BGR;16 is 16 per pixel)


def _refuse_reduced_depth(img, where: str) -> None:
    """Pillow decodes 16-bit colour and gray+alpha PNGs into 8 bits: refused, never truncated."""
    reduced = [raw for raw in _tile_rawmodes(img) if raw.startswith(_WIDE_COLOUR)]
    if reduced:
        raise ValueError(f"{where}: a 16-bit {reduced[0].split(';')[0]} image, which Pillow reads as 8 bits; "
                         "refused rather than truncated: save it as 8-bit, or load it as uint16 arrays "
                         "(e.g. cv2.imread(path, cv2.IMREAD_UNCHANGED)) and pass (images, labels)")
