"""Captions, images and the train transform of the replica, read from virtex's own artifacts.

Captions: virtex's tokenize artifact (vocab.json + tokens.i32/offsets.u32/index.json), so the
replica trains on the very ids virtex does. Images: virtex's augment artifact (raw uint8 shards at
the recipe's short side). Each sample is RandomResizedCrop -> flip (swapping the words left/right
in the caption) -> ColorJitter with p -> Normalize, as pipeline/augment/transforms.ts; only the
random draws differ (torch's and numpy's generators instead of virtex's counter-based RNG).
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms as T

WORD_START = "\u2581"


# ---------------------------------------------------------------- captions
def read_split(path):
    """Image ids listed one per line (a virtex trainSplit file)."""
    return [l.strip() for l in open(path) if l.strip()]


class Captions:
    """Token rows per image id plus the vocabulary's pieces (for the left/right swap)."""

    def __init__(self, by_image, pieces, max_length, source):
        self.by_image, self.pieces, self.max_length, self.source = by_image, pieces, max_length, source

    @classmethod
    def from_virtex_artifact(cls, d):
        idx = json.load(open(os.path.join(d, "index.json")))
        tokens = np.fromfile(os.path.join(d, "tokens.i32"), dtype="<i4").astype(np.int64)
        offs = np.fromfile(os.path.join(d, "offsets.u32"), dtype="<u4")
        pieces = [p["piece"] for p in json.load(open(os.path.join(d, "vocab.json")))["pieces"]]
        by_image = {im["id"]: [tokens[offs[r]:offs[r + 1]] for r in range(im["first"], im["first"] + im["count"])]
                    for im in idx["images"]}
        return cls(by_image, pieces, idx["maxLength"], f"virtex tokenize artifact {d}")


class LeftRightSwapper:
    """Swaps the whole words "left"/"right" in token rows (a following piece that continues the word blocks it)."""

    def __init__(self, pieces):
        self.left = pieces.index(WORD_START + "left") if WORD_START + "left" in pieces else -1
        self.right = pieces.index(WORD_START + "right") if WORD_START + "right" in pieces else -1
        special = lambda p: (p.startswith("<") and p.endswith(">")) or (p.startswith("[") and p.endswith("]"))
        self.continues = np.array([not special(p) and not p.startswith(WORD_START) and p[:1].isalnum()
                                   for p in pieces], dtype=bool)

    def swap(self, ids):
        out = ids.copy()
        if self.left < 0 or self.right < 0:
            return out
        for i, t in enumerate(ids):
            if t != self.left and t != self.right:
                continue
            if i + 1 < len(ids) and self.continues[ids[i + 1]]:
                continue
            out[i] = self.right if t == self.left else self.left
        return out


# ---------------------------------------------------------------- images
def read_shards(d, ids):
    """uint8 [3, H, W] images of `ids` from virtex's augment artifact `d` (index.json + raw [H, W, 3]
    shards): the very pixels virtex's pretraining crops from."""
    idx = json.load(open(os.path.join(d, "index.json")))
    if idx.get("format") != "virtex-shards/1":
        raise SystemExit(f"{d}/index.json: format {idx.get('format')!r}, expected virtex-shards/1")
    where = {e["id"]: e for e in idx["images"]}
    missing = [i for i in ids if i not in where]
    if missing:
        raise SystemExit(f"{d}: {len(missing)} training images are not in the shards, e.g. {missing[0]}")
    blobs = [np.memmap(os.path.join(d, s), dtype=np.uint8, mode="r") for s in idx["shards"]]
    out = []
    for i in ids:
        e = where[i]
        n = e["width"] * e["height"] * 3
        px = np.array(blobs[e["shard"]][e["offset"]:e["offset"] + n]).reshape(e["height"], e["width"], 3)
        out.append(torch.from_numpy(px).permute(2, 0, 1).contiguous())
    return out, idx["shortSide"]


# ---------------------------------------------------------------- train transform
class TrainTransform:
    """RandomResizedCrop (bilinear, no antialias, as virtex's resample) -> flip -> jitter -> normalise."""

    def __init__(self, t):
        self.size, self.scale, self.ratio = t["size"], tuple(t["scale"]), tuple(t["ratio"])
        self.flip_p, j = t["flipP"], t["jitter"]
        self.jitter_p = j["p"]
        self.jitter = T.ColorJitter(j["brightness"], j["contrast"], j["saturation"], j["hue"])
        self.mean = torch.tensor(t["mean"]).view(3, 1, 1)
        self.std = torch.tensor(t["std"]).view(3, 1, 1)

    def __call__(self, img):  # uint8 [3, H, W] -> (f32 [3, S, S], flipped)
        i, j, h, w = T.RandomResizedCrop.get_params(img, self.scale, self.ratio)
        x = img[None, :, i:i + h, j:j + w].float() / 255
        x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)[0]
        flip = bool(torch.rand(()) < self.flip_p)
        if flip:
            x = x.flip(-1)
        if torch.rand(()) < self.jitter_p:
            x = self.jitter(x)
        return (x - self.mean) / self.std, flip


class Batches:
    """Seeded epochs over the images (shuffled, last partial batch dropped), one random caption each."""

    def __init__(self, images, captions, ids, batch_size, transform, seed):
        self.images, self.captions, self.ids = images, captions, ids
        self.B, self.transform = batch_size, transform
        self.swapper = LeftRightSwapper(captions.pieces)
        self.rng = np.random.default_rng(seed)
        self.order, self.pos = None, 0
        if len(ids) < batch_size:
            raise SystemExit(f"{len(ids)} training images, fewer than one batch of {batch_size}")

    def next(self):
        """(images [B, 3, S, S], tokens [B, maxLength] padded with 0, lengths [B])."""
        if self.order is None or self.pos + self.B > len(self.order):
            self.order, self.pos = self.rng.permutation(len(self.ids)), 0
        idx = self.order[self.pos:self.pos + self.B]
        self.pos += self.B
        L = self.captions.max_length
        xs, tokens, lengths = [], torch.zeros(self.B, L, dtype=torch.long), []
        for b, i in enumerate(idx):
            x, flip = self.transform(self.images[i])
            rows = self.captions.by_image[self.ids[i]]
            t = rows[int(self.rng.integers(len(rows)))]
            if flip:
                t = self.swapper.swap(t)
            xs.append(x)
            tokens[b, :len(t)] = torch.from_numpy(t)
            lengths.append(len(t))
        return torch.stack(xs), tokens, lengths
