#!/usr/bin/env python3
# make_pil_resize.py — writes pil_resize.json: FNV-1a 64 hashes of Pillow's Image.resize(..., BICUBIC) output for
# seeded 8-bit images (RGB and L), the reference test_clip checks core/resample.c against beyond the three
# images of golden_clip (large downscales as 512 -> 224, upscales, odd sizes, clipping of overshoots).
# Run with the Python that has Pillow (here Debian 12's python3-pil 9.4.0): /usr/bin/python3 make_pil_resize.py
import json
import PIL
from PIL import Image

def pixels(n, seed, pattern, w, c):
    if pattern == "lcg":  # state = state * 1103515245 + 12345 mod 2^32; byte = state >> 24
        out, s = bytearray(n), seed
        for i in range(n):
            s = (s * 1103515245 + 12345) & 0xFFFFFFFF
            out[i] = s >> 24
        return bytes(out)
    # "checker": 255 / 0 cells of 3 x 2 pixels (hard edges, so the bicubic lobes overshoot and clip)
    return bytes(255 if ((i // c % w) // 3 + (i // c // w) // 2) % 2 else 0 for i in range(n))

def fnv1a(b):
    h = 0xcbf29ce484222325
    for x in b:
        h = ((h ^ x) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h

cases = []
for mode, c in (("RGB", 3), ("L", 1)):
    for (w, h, ow, oh) in ((512, 512, 224, 224), (640, 480, 298, 224), (300, 1000, 224, 746), (7, 5, 224, 160),
                           (97, 13, 40, 9), (1, 1, 5, 5), (225, 224, 224, 223), (1000, 999, 336, 335)):
        for pattern in ("lcg", "checker"):
            seed = len(cases) + 1
            data = pixels(w * h * c, seed, pattern, w, c)
            out = Image.frombytes(mode, (w, h), data).resize((ow, oh), Image.BICUBIC).tobytes()
            cases.append({"mode": mode, "channels": c, "w": w, "h": h, "ow": ow, "oh": oh, "pattern": pattern, "seed": seed,
                          "fnv1a64": fnv1a(out)})
json.dump({"generator": "tests/golden/clip/make_pil_resize.py", "pillow": PIL.__version__, "filter": "Image.BICUBIC",
           "cases": cases}, open("pil_resize.json", "w"), indent=1)
print(len(cases), "cases")
