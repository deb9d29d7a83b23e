#!/usr/bin/python3
"""Inputs and decoding for tests/cli_real_models.sh (the real models of issue 4).

  real_models.py ocr-input TEXT OUT.npy     renders TEXT with DejaVuSans at 32 px on a
      white strip 48 px high, padded to width 320, scaled to (x/255 - 0.5) / 0.5, NCHW
      f32[1,3,48,320]: the input of PP-OCRv4's recogniser
  real_models.py ctc-decode OUT.npy KEYS    greedy CTC decoding of the recogniser's
      output [1,T,6625]: argmax per step, blanks (index 0) and repeats dropped, index i
      is line i-1 of KEYS with a space appended as the last key; prints the text
  real_models.py face-input OUT.npy         a rendered face-like picture (skin-coloured
      ellipse with eyes and a mouth on a gradient), NHWC f32[1,128,128,3] in [-1, 1]:
      the input of BlazeFace

Needs Debian's python3-pil, python3-numpy and fonts-dejavu-core.
"""
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def ocr_input(text, out):
    font = ImageFont.truetype(FONT, 32)
    _, y0, x1, y1 = font.getbbox(text)
    w = max(x1 + 8, 320)
    img = Image.new("RGB", (w, 48), "white")
    ImageDraw.Draw(img).text((4, (48 - (y1 - y0)) // 2 - y0), text, font=font, fill="black")
    if w > 320:  # too wide: scale the strip down to width 320, keeping the height
        img = img.resize((320, 48), Image.BILINEAR)
    a = np.asarray(img, dtype=np.float32) / 255.0
    a = (a - 0.5) / 0.5
    np.save(out, np.ascontiguousarray(a.transpose(2, 0, 1)[None]))


def ctc_decode(out, keys):
    with open(keys, encoding="utf-8") as f:
        chars = [line.rstrip("\n") for line in f] + [" "]
    p = np.load(out)
    idx = p.reshape(-1, p.shape[-1]).argmax(axis=1)
    text, prev = [], 0
    for i in idx:
        if i != 0 and i != prev:
            text.append(chars[i - 1] if i - 1 < len(chars) else "?")
        prev = i
    print("".join(text))


def face_input(out):
    n = 128
    y, x = np.mgrid[0:n, 0:n].astype(np.float32)
    img = Image.new("RGB", (n, n))
    bg = np.stack([60 + x, 90 + 0.5 * y, 140 - 0.3 * x], axis=-1)
    img = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    d.ellipse((34, 22, 94, 106), fill=(224, 172, 138))
    d.ellipse((48, 50, 58, 58), fill=(40, 30, 30))
    d.ellipse((70, 50, 80, 58), fill=(40, 30, 30))
    d.polygon([(64, 60), (60, 76), (68, 76)], fill=(200, 140, 110))
    d.chord((50, 78, 78, 94), 0, 180, fill=(150, 50, 60))
    a = np.asarray(img, dtype=np.float32) / 127.5 - 1.0
    np.save(out, np.ascontiguousarray(a[None]))


def main():
    a = sys.argv[1:]
    if len(a) == 3 and a[0] == "ocr-input":
        ocr_input(a[1], a[2])
    elif len(a) == 3 and a[0] == "ctc-decode":
        ctc_decode(a[1], a[2])
    elif len(a) == 2 and a[0] == "face-input":
        face_input(a[1])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
