#!/usr/bin/python3
"""Reference side of bench/augment (Debian python3-torchvision).

  prepare OUT N SHORT   decode up to N images (coco-tiny, else Flickr8k, else synthetic), resize the
                        short side to SHORT with PIL bilinear, write them as raw uint8 HWC to OUT
                        (a JSON header line, then the bytes)
  bench IN THREADS SECONDS SIZE
                        time torchvision's RandomResizedCrop(SIZE, scale 0.2-1) + flip + ColorJitter
                        (0.4, 0.4, 0.4, 0.1, p 0.8) + Normalize on the decoded images, in three
                        variants: uint8 tensors (jitter on uint8, as usual), float tensors (the same
                        float ops as ours) and PIL images; prints one JSON line
"""
import glob
import json
import os
import sys
import time

import numpy as np


def prepare(out, n, short):
    from PIL import Image

    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "data")
    files = sorted(glob.glob(os.path.join(root, "coco-tiny", "*2017", "*.jpg")))
    source = "coco-tiny"
    if not files:
        files = sorted(glob.glob(os.path.join(root, "flickr8k", "images", "*.jpg")))
        source = "flickr8k"
    images = []
    for f in files[:n]:
        im = Image.open(f).convert("RGB")
        w, h = im.size
        if w <= h:
            size = (short, int(short * h / w))
        else:
            size = (int(short * w / h), short)
        images.append(np.asarray(im.resize(size, Image.BILINEAR)))
    if not images:
        source = "synthetic"
        rng = np.random.default_rng(0)
        for i in range(n):
            w = short + int(rng.integers(0, short // 2))
            images.append(rng.integers(0, 256, size=(short, w, 3), dtype=np.uint8))
    header = {"source": source, "images": [{"width": a.shape[1], "height": a.shape[0]} for a in images]}
    with open(out, "wb") as fh:
        fh.write((json.dumps(header) + "\n").encode())
        for a in images:
            fh.write(np.ascontiguousarray(a).tobytes())
    print(json.dumps({"source": source, "count": len(images)}))


def load(path):
    with open(path, "rb") as fh:
        header = json.loads(fh.readline())
        arrays = []
        for im in header["images"]:
            n = im["width"] * im["height"] * 3
            arrays.append(np.frombuffer(fh.read(n), dtype=np.uint8).reshape(im["height"], im["width"], 3))
    return arrays


def timed(fn, items, seconds):
    for x in items[:4]:  # warm-up
        fn(x)
    count = 0
    start = time.perf_counter()
    while True:
        for x in items:
            fn(x)
            count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return count / elapsed


def bench(path, threads, seconds, size):
    import torch
    import torchvision.transforms as T
    from PIL import Image

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    arrays = load(path)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    jitter = T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8)
    crop = T.RandomResizedCrop(size, scale=(0.2, 1.0), antialias=False)
    flip = T.RandomHorizontalFlip()
    norm = T.Normalize(mean, std)
    u8 = [torch.from_numpy(a.copy()).permute(2, 0, 1).contiguous() for a in arrays]
    f32 = [t.float() / 255.0 for t in u8]
    pil = [Image.fromarray(a) for a in arrays]
    tensor_u8 = T.Compose([crop, flip, jitter, T.ConvertImageDtype(torch.float), norm])
    tensor_f32 = T.Compose([crop, flip, jitter, norm])
    pil_t = T.Compose([T.RandomResizedCrop(size, scale=(0.2, 1.0)), flip, jitter, T.ToTensor(), norm])
    with torch.no_grad():
        result = {
            "threads": threads,
            "tensorU8": timed(tensor_u8, u8, seconds),
            "tensorF32": timed(tensor_f32, f32, seconds),
            "pil": timed(pil_t, pil, seconds),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "prepare":
        prepare(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "bench":
        bench(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit(__doc__)
