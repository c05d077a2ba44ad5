#!/usr/bin/env python3
"""Writes eng/icon.png, the packages' 128x128 icon: a rainbow bridge (Bifrost) over a dark rounded square. Standard library only."""
import math, struct, zlib, pathlib

SIZE = 128
BANDS = [(229, 57, 53), (251, 140, 0), (253, 216, 53), (67, 160, 71), (30, 136, 229), (94, 53, 177)]
BACKGROUND = (24, 28, 40)

def pixel(x, y):
    # rounded square (radius 24), anti-aliasing by 4x4 supersampling
    samples = []
    for sy in range(4):
        for sx in range(4):
            px, py = x + (sx + 0.5) / 4, y + (sy + 0.5) / 4
            cx, cy = min(max(px, 24), SIZE - 24), min(max(py, 24), SIZE - 24)
            if math.hypot(px - cx, py - cy) > 24:
                samples.append(None)
                continue
            # arcs centred at the bottom middle, outer radius 52, six bands of 6 px
            d = math.hypot(px - 64, py - 100)
            band = int((52 - d) // 6)
            samples.append(BANDS[band] if py <= 100 and 0 <= band < len(BANDS) and d <= 52 else BACKGROUND)
    inside = [s for s in samples if s is not None]
    if not inside:
        return (0, 0, 0, 0)
    rgb = tuple(round(sum(c[i] for c in inside) / len(inside)) for i in range(3))
    return rgb + (round(255 * len(inside) / len(samples)),)

rows = b"".join(b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(SIZE)) for y in range(SIZE))

def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", SIZE, SIZE, 8, 6, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")
pathlib.Path(__file__).with_name("icon.png").write_bytes(png)
