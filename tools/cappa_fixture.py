#!/usr/bin/env python3
"""Writes the PyTorch reference for the CapPa loss (tests/pipeline/model/cappa_test.ts).

Run with Debian's torch: /usr/bin/python3 tools/cappa_fixture.py [--out tests/fixtures/model]

A caption decoder with virtex's parameter names (visual projection, word + positional embedding with
LayerNorm eps 1e-8, post-norm nn.TransformerDecoderLayer with GELU, output layer tied to the word
embedding plus its own bias) scores a batch of captions against a fixed visual grid. The first
round(fraction x B) captions are decoded in parallel: every input is [MASK], no causal mask and no
padding mask; the rest are decoded autoregressively (inputs tokens[:, :-1] under a causal mask with
each caption's padding masked). Targets are tokens[:, 1:], padding (id 0) ignored. The loss is the
mean cross-entropy over all predicted tokens; "parallel" and "autoregressive" are each part's mean.

cappa.safetensors holds
  param.<name>        head parameters (virtex names)
  input.grid          visual grid [B, C, h, w]
  input.tokens        captions [B, T] ([SOS] ... [EOS], padded with 0), i32
  input.lengths       tokens before padding [B], i32
  loss, parallel, autoregressive    scalars [1]
  grad.<name>         d loss / d parameter
  grad_input.grid     d loss / d grid
and its __metadata__ the configuration (fraction, sizes) as JSON strings.
"""
import argparse
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_fixtures import write_safetensors

PAD, SOS, EOS, MASK = 0, 1, 2, 3


class Embedding(nn.Module):
    def __init__(self, vocab, hidden, max_length):
        super().__init__()
        self.words = nn.Embedding(vocab, hidden)
        self.positions = nn.Embedding(max_length, hidden)
        self.layer_norm = nn.LayerNorm(hidden, eps=1e-8)

    def forward(self, ids):
        pos = torch.arange(ids.shape[1])
        return self.layer_norm(self.words(ids) + self.positions(pos))


class Head(nn.Module):
    def __init__(self, channels, vocab, hidden, heads, ff, layers, max_length):
        super().__init__()
        self.visual_projection = nn.Linear(channels, hidden)
        self.embedding = Embedding(vocab, hidden, max_length)
        self.transformer = nn.Module()
        self.transformer.layers = nn.ModuleList([
            nn.TransformerDecoderLayer(hidden, heads, ff, dropout=0.0, activation="gelu",
                                       batch_first=True)
            for _ in range(layers)
        ])
        self.output_bias = nn.Parameter(torch.zeros(vocab))

    def project(self, grid):
        b, c, h, w = grid.shape
        return self.visual_projection(grid.reshape(b, c, h * w).permute(0, 2, 1))

    def decode(self, memory, ids, causal, pad_mask):
        x = self.embedding(ids)
        t = ids.shape[1]
        mask = torch.triu(torch.full((t, t), float("-inf")), diagonal=1) if causal else None
        for layer in self.transformer.layers:
            x = layer(x, memory, tgt_mask=mask, tgt_key_padding_mask=pad_mask)
        return F.linear(x, self.embedding.words.weight, self.output_bias)


def cappa_fixture(out_dir):
    torch.manual_seed(5)
    B, T, C, h, w = 8, 7, 8, 2, 2
    V, H, A, FF, L, MAXLEN = 12, 16, 2, 32, 1, 8
    fraction = 0.75
    head = Head(C, V, H, A, FF, L, MAXLEN)
    with torch.no_grad():  # non-trivial everything (the real init zeroes biases)
        for name, p in head.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            else:
                p.copy_(0.3 * torch.randn_like(p))
    params_before = {k: v.clone() for k, v in head.state_dict().items()}
    grid = torch.randn(B, C, h, w, requires_grad=True)
    lengths = [7, 3, 5, 4, 6, 7, 3, 5]
    tokens = torch.zeros(B, T, dtype=torch.int64)
    for b, n in enumerate(lengths):
        tokens[b, 0] = SOS
        tokens[b, 1:n - 1] = torch.randint(MASK + 1, V, (n - 2,))
        tokens[b, n - 1] = EOS
    n_par = math.floor(fraction * B + 0.5)  # JavaScript's Math.round
    memory = head.project(grid)
    target = tokens[:, 1:]
    # Parallel rows: all-[MASK] inputs, full attention, no padding mask.
    par_ids = torch.full((n_par, T - 1), MASK, dtype=torch.int64)
    par_logits = head.decode(memory[:n_par], par_ids, causal=False, pad_mask=None)
    par_sum = F.cross_entropy(par_logits.reshape(-1, V), target[:n_par].reshape(-1),
                              ignore_index=PAD, reduction="sum")
    # Autoregressive rows: teacher forcing, causal, each caption's padding masked.
    ar_in = tokens[n_par:, :-1]
    ar_len = [max(1, n - 1) for n in lengths[n_par:]]
    pad = torch.zeros(B - n_par, T - 1, dtype=torch.bool)
    for i, n in enumerate(ar_len):
        pad[i, n:] = True
    ar_logits = head.decode(memory[n_par:], ar_in, causal=True, pad_mask=pad)
    ar_sum = F.cross_entropy(ar_logits.reshape(-1, V), target[n_par:].reshape(-1),
                             ignore_index=PAD, reduction="sum")
    n_par_tok = int((target[:n_par] != PAD).sum())
    n_ar_tok = int((target[n_par:] != PAD).sum())
    loss = (par_sum + ar_sum) / (n_par_tok + n_ar_tok)
    loss.backward()
    t = {
        "input.grid": grid,
        "input.tokens": tokens,
        "input.lengths": torch.tensor(lengths, dtype=torch.int32),
        "loss": loss.reshape(1),
        "parallel": (par_sum / n_par_tok).reshape(1),
        "autoregressive": (ar_sum / n_ar_tok).reshape(1),
        "grad_input.grid": grid.grad,
    }
    for k, v in params_before.items():
        t["param." + k] = v
    for k, p in head.named_parameters():
        t["grad." + k] = p.grad
    meta = {"fraction": fraction, "parallel_rows": n_par, "head": f"transdec_postnorm::L{L}_H{H}_A{A}_F{FF}",
            "visual_channels": C, "vocab": V, "max_length": MAXLEN, "torch": torch.__version__}
    write_safetensors(os.path.join(out_dir, "cappa.safetensors"), t, meta)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/fixtures/model")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    cappa_fixture(args.out)
    print("wrote", os.path.join(args.out, "cappa.safetensors"))


if __name__ == "__main__":
    main()
