#!/usr/bin/env python3
"""Runs the PyPI image watermarkers tracecast's benchmark compares against.

  image_peers.py embed OUTDIR IMAGE...   -> one JSON line per (image, method)
  image_peers.py decode METHOD FILE...   -> one JSON line per file

Methods: dwtDct and dwtDctSvd (invisible-watermark), blind (blind-watermark).
Every method carries the same 32-bit payload; none has error correction, so
a copy counts as traced only when all 32 bits come back.
"""
import contextlib
import io
import json
import os
import sys
import time

import cv2
import numpy as np

PAYLOAD = [int(b) for b in format(0xA5C3_5E71, "032b")]
METHODS = ["dwtDct", "dwtDctSvd", "blind"]


def embed(method, bgr, path):
    if method == "blind":
        from blind_watermark import WaterMark

        wm = WaterMark(password_img=1, password_wm=1, processes=1)
        with contextlib.redirect_stdout(io.StringIO()):
            wm.read_img(img=bgr)
            wm.read_wm(np.array(PAYLOAD, dtype=bool), mode="bit")
            out = wm.embed()
        out = np.clip(out, 0, 255).astype(np.uint8)
    else:
        from imwatermark import WatermarkEncoder

        enc = WatermarkEncoder()
        enc.set_watermark("bits", PAYLOAD)
        out = enc.encode(bgr, method)
    cv2.imwrite(path, out)
    return out


def decode(method, bgr):
    if method == "blind":
        from blind_watermark import WaterMark

        wm = WaterMark(password_img=1, password_wm=1, processes=1)
        with contextlib.redirect_stdout(io.StringIO()):
            bits = wm.extract(embed_img=bgr, wm_shape=len(PAYLOAD), mode="bit")
        return [int(b > 0.5) for b in bits]
    from imwatermark import WatermarkDecoder

    dec = WatermarkDecoder("bits", len(PAYLOAD))
    return [int(b) for b in dec.decode(bgr, method)]


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    mode = sys.argv[1]
    if mode == "embed":
        outdir = sys.argv[2]
        for img in sys.argv[3:]:
            bgr = cv2.imread(img, cv2.IMREAD_COLOR)
            stem = os.path.splitext(os.path.basename(img))[0]
            for method in METHODS:
                path = os.path.join(outdir, f"{stem}.{method}.png")
                t = time.perf_counter()
                out = embed(method, bgr, path)
                secs = time.perf_counter() - t
                mp = bgr.shape[0] * bgr.shape[1] / 1e6
                print(json.dumps({"image": img, "method": method, "file": path,
                                  "psnr": psnr(bgr, out), "mp_per_s": mp / secs}), flush=True)
    elif mode == "decode":
        method = sys.argv[2]
        for f in sys.argv[3:]:
            bgr = cv2.imread(f, cv2.IMREAD_COLOR)
            t = time.perf_counter()
            try:
                bits = decode(method, bgr)
                ok = sum(int(a == b) for a, b in zip(bits, PAYLOAD))
            except Exception as e:  # a peer that crashes on an input reads nothing
                print(f"{method} on {f}: {e}", file=sys.stderr)
                ok = 0
            mp = bgr.shape[0] * bgr.shape[1] / 1e6
            print(json.dumps({"file": f, "method": method, "bits_ok": ok,
                              "mp_per_s": mp / (time.perf_counter() - t)}), flush=True)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
