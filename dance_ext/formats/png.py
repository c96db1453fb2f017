"""PNG files of 8 or 16 bits per channel, grey or RGB, written and read exactly. Pillow
cannot write 16-bit RGB and reads it as 8 bits, so this small codec does both; Pillow reads
the PNGs it does not cover (palette, alpha, interlaced) as 8-bit."""
from __future__ import annotations

import struct
import zlib

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOUR_TYPES = {1: 0, 3: 2}  # channels -> PNG colour type (grey, RGB)
_CHANNELS = {0: 1, 2: 3}


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode(pixels: np.ndarray) -> bytes:
    """(H, W, C) uint8 or uint16 with C in {1, 3} -> PNG bytes (every row unfiltered)."""
    h, w, c = pixels.shape
    depth = 16 if pixels.dtype == np.uint16 else 8
    rows = np.ascontiguousarray(pixels, dtype=">u2" if depth == 16 else np.uint8).view(np.uint8).reshape(h, -1)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes()
    header = struct.pack(">IIBBBBB", w, h, depth, _COLOUR_TYPES[c], 0, 0, 0)
    return SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b"")


def _chunks(data: bytes, where: str):
    pos = len(SIGNATURE)
    while pos + 12 <= len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        crc = data[pos + 8 + length:pos + 12 + length]
        if len(body) != length or len(crc) != 4 or struct.unpack(">I", crc)[0] != zlib.crc32(kind + body):
            raise ValueError(f"{where}: truncated or corrupt PNG (chunk {kind!r})")
        yield kind, body
        if kind == b"IEND":
            return
        pos += 12 + length
    raise ValueError(f"{where}: truncated or corrupt PNG (no IEND chunk)")


def decode(data: bytes, where: str) -> np.ndarray | None:
    """(H, W, C) uint8 or uint16 of a non-interlaced grey or RGB PNG of 8 or 16 bits; None
    for the other PNG kinds."""
    if not data.startswith(SIGNATURE):
        raise ValueError(f"{where}: not a PNG file")
    header, idat = None, []
    for kind, body in _chunks(data, where):
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
    if header is None:
        raise ValueError(f"{where}: truncated or corrupt PNG (no IHDR chunk)")
    w, h, depth, colour, _, _, interlace = header
    if depth not in (8, 16) or colour not in _CHANNELS or interlace:
        return None
    c, size = _CHANNELS[colour], depth // 8
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error as exc:
        raise ValueError(f"{where}: truncated or corrupt PNG ({exc})") from None
    stride = w * c * size
    if len(raw) != h * (stride + 1):
        raise ValueError(f"{where}: truncated or corrupt PNG ({len(raw)} bytes of pixel data for {w}x{h})")
    rows = _unfilter(np.frombuffer(raw, np.uint8).reshape(h, stride + 1), c * size, where)
    dtype = np.dtype(">u2") if depth == 16 else np.dtype(np.uint8)
    return rows.view(dtype).reshape(h, w, c).astype(dtype.newbyteorder("="))


def _unfilter(rows: np.ndarray, bpp: int, where: str) -> np.ndarray:
    """Undo the PNG row filters (None, Sub, Up, Average, Paeth) on (H, 1 + stride) bytes."""
    h, stride = rows.shape[0], rows.shape[1] - 1
    out = np.zeros((h, stride), np.uint8)
    prior = np.zeros(stride, np.int32)
    for y in range(h):
        kind, line = rows[y, 0], rows[y, 1:].astype(np.int32)
        if kind == 0:
            cur = line
        elif kind == 1:  # Sub: a running sum per byte lane
            cur = line.reshape(-1, bpp).cumsum(axis=0).reshape(-1) % 256
        elif kind == 2:
            cur = (line + prior) % 256
        elif kind in (3, 4):
            cur = _unfilter_sequential(line, prior, bpp, kind)
        else:
            raise ValueError(f"{where}: corrupt PNG (row filter type {kind})")
        out[y] = cur
        prior = cur.astype(np.int32)
    return out


def _unfilter_sequential(line: np.ndarray, prior: np.ndarray, bpp: int, kind: int) -> np.ndarray:
    """Average and Paeth depend on the decoded left neighbour: one pixel at a time."""
    cur = np.zeros_like(line)
    left, up_left = np.zeros(bpp, np.int32), np.zeros(bpp, np.int32)
    for x in range(0, line.size, bpp):
        up = prior[x:x + bpp]
        if kind == 3:
            pred = (left + up) // 2
        else:
            p = left + up - up_left
            pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - up_left)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, up_left))
        cur[x:x + bpp] = (line[x:x + bpp] + pred) % 256
        left, up_left = cur[x:x + bpp], up
    return cur
