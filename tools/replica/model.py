"""Backbones and textual heads with virtex's names, layouts and initialisation, in PyTorch.

Mirrors pipeline/model/backbones.ts (torchvision ResNet topology, `_wN` base width, `_os16` = no
stem max pool, zero-init last BN gamma, Kaiming-normal fan-out convs), pipeline/model/
textual_heads.ts (word + positional embedding, LayerNorm eps 1e-8, dropout; post- or pre-norm
decoder layers; output tied to the word embedding with its own bias; N(0, initStd) projections)
and pipeline/model/tasks.ts (bicaptioning: forward + backward decoders sharing the embedding,
visual projection and output bias, the backward one starting as a copy of the forward one).
Parameter names equal virtex's, so counts and shapes can be compared name by name.
"""
import copy
import re

import torch
import torch.nn as nn
import torch.nn.functional as F

PAD, SOS, EOS, MASK = 0, 1, 2, 3

# name -> (block, layers per stage)
BACKBONES = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
}


def parse_backbone_name(name):
    """`resnet18_w16_os16` -> ("resnet18", width 16, stem pool False); raises on an unknown name."""
    m = re.fullmatch(r"(.*?)(?:_w(\d+))?(_os16)?", name)
    base, width = m.group(1), int(m.group(2) or 64)
    if base not in BACKBONES or not 1 <= width <= 1024:
        raise ValueError(f"unknown visual backbone {name!r} (known: {', '.join(BACKBONES)}, "
                         "optionally followed by _wN and/or _os16)")
    return base, width, m.group(3) is None


def parse_head_name(name):
    """`transdec_postnorm::L1_H128_A2_F512` -> dict(kind, layers, hidden, heads, feedforward)."""
    kind, _, size = name.partition("::")
    m = re.fullmatch(r"L(\d+)_H(\d+)(?:_A(\d+))?(?:_F(\d+))?", size)
    if kind not in ("transdec_postnorm", "transdec_prenorm") or not m:
        raise ValueError(f"textual head {name!r}: expected transdec_postnorm|transdec_prenorm::L1_H2048_A32_F8192")
    hidden = int(m.group(2))
    heads = int(m.group(3) or max(1, hidden // 64))
    if hidden % heads:
        raise ValueError(f"textual head {name!r}: hidden {hidden} not divisible by {heads} heads")
    return dict(kind=kind, layers=int(m.group(1)), hidden=hidden, heads=heads,
                feedforward=int(m.group(4) or 4 * hidden))


def _conv(cin, cout, k, stride=1):
    c = nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, bias=False)
    nn.init.kaiming_normal_(c.weight, mode="fan_out", nonlinearity="relu")
    return c


class Downsample(nn.Sequential):
    """1x1 conv + BN on the shortcut (names downsample.0, downsample.1)."""

    def __init__(self, cin, cout, stride):
        super().__init__(_conv(cin, cout, 1, stride), nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1, self.bn1 = _conv(cin, planes, 3, stride), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = _conv(planes, planes, 3), nn.BatchNorm2d(planes)
        nn.init.zeros_(self.bn2.weight)
        self.downsample = Downsample(cin, planes, stride) if stride != 1 or cin != planes else None

    def forward(self, x):  # [B, cin, h, w] -> [B, planes, h/s, w/s]
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride):
        super().__init__()
        out = planes * 4
        self.conv1, self.bn1 = _conv(cin, planes, 1), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = _conv(planes, planes, 3, stride), nn.BatchNorm2d(planes)
        self.conv3, self.bn3 = _conv(planes, out, 1), nn.BatchNorm2d(out)
        nn.init.zeros_(self.bn3.weight)
        self.downsample = Downsample(cin, out, stride) if stride != 1 or cin != out else None

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn3(self.conv3(F.relu(self.bn2(self.conv2(y)))))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResNetBackbone(nn.Module):
    """Stem (7x7/2 conv, BN, ReLU[, 3x3/2 max pool]) + layer1..4; returns the final grid."""

    def __init__(self, name):
        super().__init__()
        base, width, self.stem_pool = parse_backbone_name(name)
        kind, layers = BACKBONES[base]
        block = BasicBlock if kind == "basic" else Bottleneck
        self.conv1, self.bn1 = _conv(3, width, 7, 2), nn.BatchNorm2d(width)
        cin = width
        for s, n in enumerate(layers):
            planes = width << s
            blocks = []
            for i in range(n):
                blocks.append(block(cin, planes, 2 if i == 0 and s > 0 else 1))
                cin = planes * block.expansion
            setattr(self, f"layer{s + 1}", nn.Sequential(*blocks))
        self.feature_size = cin

    def forward(self, x):  # [B, 3, S, S] -> [B, C, S/32, S/32] (S/16 without the stem pool)
        x = F.relu(self.bn1(self.conv1(x)))
        if self.stem_pool:
            x = F.max_pool2d(x, 3, 2, 1)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def _bert_init(lin, std):
    nn.init.normal_(lin.weight, std=std)
    if lin.bias is not None:
        nn.init.zeros_(lin.bias)


class WordAndPositionalEmbedding(nn.Module):
    def __init__(self, vocab, hidden, max_length, p):
        super().__init__()
        self.words, self.positions = nn.Embedding(vocab, hidden), nn.Embedding(max_length, hidden)
        self.layer_norm, self.dropout = nn.LayerNorm(hidden, eps=1e-8), nn.Dropout(p)
        nn.init.normal_(self.words.weight, std=0.02)
        nn.init.normal_(self.positions.weight, std=0.02)
        with torch.no_grad():
            self.words.weight[PAD].zero_()

    def forward(self, tokens):  # [B, T] -> [B, T, H]
        pos = self.positions.weight[: tokens.shape[1]]
        return self.dropout(self.layer_norm(self.words(tokens) + pos))


class Transformer(nn.Module):
    """Holder so names read textual.transformer.layers.N.* as virtex's."""

    def __init__(self, spec, p, std):
        super().__init__()
        self.layers = nn.ModuleList()
        for _ in range(spec["layers"]):
            layer = nn.TransformerDecoderLayer(spec["hidden"], spec["heads"], spec["feedforward"], p,
                                               activation="gelu", batch_first=True,
                                               norm_first=spec["kind"] == "transdec_prenorm")
            for lin in (layer.linear1, layer.linear2, layer.self_attn.out_proj, layer.multihead_attn.out_proj):
                _bert_init(lin, std)
            for att in (layer.self_attn, layer.multihead_attn):
                nn.init.normal_(att.in_proj_weight, std=std)
                nn.init.zeros_(att.in_proj_bias)
            self.layers.append(layer)


class TransformerTextualHead(nn.Module):
    """Visual projection, embedding, decoder layers, tied output with its own bias."""

    def __init__(self, spec, visual_size, vocab, max_length=30, p=0.1, std=0.02, share=None):
        super().__init__()
        if share is None:
            self.visual_projection = nn.Linear(visual_size, spec["hidden"])
            _bert_init(self.visual_projection, std)
            self.embedding = WordAndPositionalEmbedding(vocab, spec["hidden"], max_length, p)
            self.output_bias = nn.Parameter(torch.zeros(vocab))
        else:  # shared with the forward head (bicaptioning)
            self.visual_projection, self.embedding = share.visual_projection, share.embedding
            self.output_bias = share.output_bias
        self.transformer = Transformer(spec, p, std)

    def project_visual(self, grid):  # [B, C, h, w] -> [B, h*w, H]
        return self.visual_projection(grid.flatten(2).transpose(1, 2))

    def decode(self, memory, tokens, lengths=None, causal=True):  # -> logits [B, T, V]
        T = tokens.shape[1]
        x = self.embedding(tokens)  # [B, T, H]
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1) if causal else None
        pad = None
        if lengths is not None:
            pad = torch.arange(T)[None, :] >= torch.as_tensor(lengths)[:, None]  # [B, T]
        for layer in self.transformer.layers:
            x = layer(x, memory, tgt_mask=mask, tgt_key_padding_mask=pad)
        return x @ self.embedding.words.weight.t() + self.output_bias


def caption_loss(head, grid, tokens, lengths):
    """Teacher forcing: predict tokens[:, 1:] from tokens[:, :-1]; PAD targets ignored (mean)."""
    memory = head.project_visual(grid)
    inp, target = tokens[:, :-1], tokens[:, 1:]
    logits = head.decode(memory, inp, [max(1, n - 1) for n in lengths])
    return F.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=PAD)


def reverse_captions(tokens, lengths):
    """Each row's first `length` tokens reversed ([EOS] ... [SOS]); padding stays at the end."""
    out = torch.zeros_like(tokens)
    for b, n in enumerate(lengths):
        out[b, :n] = tokens[b, :n].flip(0)
    return out


class PretrainingModel(nn.Module):
    """visual + textual (+ backward_textual for bicaptioning) as virtex's PretrainingModel."""

    def __init__(self, task, visual, textual, vocab, max_length=30, dropout=0.1, init_std=0.02):
        super().__init__()
        if task not in ("bicaptioning", "captioning"):
            raise ValueError(f"task {task!r}: the replica covers bicaptioning and captioning")
        self.task = task
        self.visual = ResNetBackbone(visual)
        spec = parse_head_name(textual)
        self.textual = TransformerTextualHead(spec, self.visual.feature_size, vocab, max_length, dropout, init_std)
        if task == "bicaptioning":
            self.backward_textual = TransformerTextualHead(spec, self.visual.feature_size, vocab, max_length,
                                                           dropout, init_std, share=self.textual)
            self.backward_textual.transformer.load_state_dict(copy.deepcopy(self.textual.transformer.state_dict()))

    def loss(self, images, tokens, lengths):
        """Scalar loss and its parts: forward (+ backward) caption cross-entropy."""
        grid = self.visual(images)
        fwd = caption_loss(self.textual, grid, tokens, lengths)
        if self.task == "captioning":
            return fwd, {"forward": fwd.item()}
        bwd = caption_loss(self.backward_textual, grid, reverse_captions(tokens, lengths), lengths)
        return fwd + bwd, {"forward": fwd.item(), "backward": bwd.item()}


def param_shapes(model):
    """[(name, shape)] of the model's parameters, shared ones once under their first name."""
    return [(n, list(p.shape)) for n, p in model.named_parameters()]
