"""An image's size from its header: JPEG (the SOF segment), PNG (IHDR) and WebP (VP8,
VP8L, VP8X). Pure byte parsing, no decoder: the emulator reports the size of what it
was shown even where OpenCV is not installed.
"""

from __future__ import annotations

import struct

# Start-of-frame markers: C0-CF less DHT (C4), JPG (C8) and DAC (CC).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM, RST0-7, SOI.
_STANDALONE = frozenset({0x01, 0xD8, *range(0xD0, 0xD8)})
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the first start-of-frame segment; None if there is none."""
    if not data.startswith(b"\xff\xd8"):
        return None
    i = 2
    while i + 1 < len(data):
        if data[i] != 0xFF:
            return None  # not at a marker: a corrupt stream
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        i += 2
        if marker in _STANDALONE:
            continue
        if marker in (0xD9, 0xDA):  # end of image, or scan data before any frame header
            return None
        if i + 2 > len(data):
            return None
        (length,) = struct.unpack(">H", data[i : i + 2])
        if marker in _SOF_MARKERS:
            if i + 7 > len(data) or length < 7:
                return None
            height, width = struct.unpack(">HH", data[i + 3 : i + 7])
            return (width, height) if width and height else None
        if length < 2:
            return None
        i += length
    return None


def png_size(data: bytes) -> tuple[int, int] | None:
    if not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR" or len(data) < 24:
        return None
    width, height = struct.unpack(">II", data[16:24])
    return (width, height) if width and height else None


def webp_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 30 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    chunk = data[12:16]
    if chunk == b"VP8X":  # 24-bit width-1 and height-1
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    if chunk == b"VP8L" and data[20] == 0x2F:  # 14-bit width-1 and height-1
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":  # key frame start code
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a JPEG, PNG or WebP image; None for anything else or a header
    that does not parse."""
    for reader in (jpeg_size, png_size, webp_size):
        size = reader(data)
        if size is not None:
            return size
    return None
