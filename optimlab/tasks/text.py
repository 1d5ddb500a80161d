"""``shakespeare-char``: a character-level transformer language model on seven Shakespeare plays
(public domain, shipped as ``optimlab/data/shakespeare.txt.gz``; see ``optimlab/data/README.md``).

Data: the text's characters are the vocabulary (sorted). The text is cut in order into train
(first 80%), validation (next 10%) and test (last 10%) parts, and each part into non-overlapping
windows of ``block`` + 1 characters: a row's input is the first ``block`` characters, its target
the same window shifted by one (next-character prediction at every position).

Loss: mean cross-entropy (nats) over every position. Metric ``bpc``: bits per character,
cross-entropy / ln 2 (lower is better). ``train_loss`` is measured on a fixed, evenly spaced
sample of :data:`TRAIN_EVAL_WINDOWS` training windows (a whole pass over the training text per
evaluation would cost as much as an epoch of training); validation and test use every window.
"""

from __future__ import annotations

import gzip
import math
from functools import lru_cache
from importlib import resources
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from .datasets import CLASSIFICATION
from .models import check_init
from .module_task import ModuleTask
from .task import EVAL_CHUNK, Split

TRAIN_EVAL_WINDOWS = 512
TEXT_FILE = "data/shakespeare.txt.gz"
MODEL_OPTIONS = ("block", "width", "depth", "heads")
DATA_OPTIONS = ("chars",)  # use only the text's first N characters (a smaller, faster task)
DEFAULTS = {"block": 64, "width": 128, "depth": 4, "heads": 4}


@lru_cache(maxsize=1)
def read_shakespeare() -> str:
    """The shipped text (1,006,384 ASCII characters)."""
    return gzip.decompress(resources.files("optimlab").joinpath(TEXT_FILE).read_bytes()).decode("ascii")


def char_windows(codes: torch.Tensor, block: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-overlapping windows of ``block + 1`` codes: (inputs w[:-1], targets w[1:]), each (N, block)."""
    count = (len(codes) - 1) // block
    windows = codes[: count * block + 1]
    x = windows[:-1].reshape(count, block)
    y = windows[1:].reshape(count, block)
    return x, y


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position t sees positions <= t."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width={width} must be a multiple of heads={heads}")
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = self.qkv(x).split(width, dim=2)
        q, k, v = (t.view(batch, length, self.heads, width // self.heads).transpose(1, 2) for t in (q, k, v))
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out(attended.transpose(1, 2).reshape(batch, length, width))


class TransformerBlock(nn.Module):
    """Pre-norm block: x + attention(LN(x)), then x + MLP(LN(x)) with a 4x GELU hidden layer."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attention = CausalSelfAttention(width, heads)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class CharTransformer(nn.Module):
    """Token + learned position embeddings, ``depth`` pre-norm blocks, a final LayerNorm and a
    linear read-out to the vocabulary: logits of shape (batch, length, vocab). Weights start as
    GPT-2's: N(0, 0.02^2), residual output projections scaled by 1/sqrt(2 depth), zero biases."""

    def __init__(self, vocab: int, block: int = 64, width: int = 128, depth: int = 4, heads: int = 4) -> None:
        super().__init__()
        self.block = block
        self.tokens = nn.Embedding(vocab, width)
        self.positions = nn.Embedding(block, width)
        self.blocks = nn.ModuleList(TransformerBlock(width, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab)
        self._init_weights(depth)

    def _init_weights(self, depth: int) -> None:
        for name, module in self.named_modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                residual = name.endswith("attention.out") or name.endswith("mlp.2")
                nn.init.normal_(module.weight, 0.0, 0.02 / math.sqrt(2 * depth) if residual else 0.02)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        length = codes.shape[1]
        if length > self.block:
            raise ValueError(f"sequence of {length} characters is longer than the block ({self.block})")
        positions = torch.arange(length, device=codes.device)
        x = self.tokens(codes) + self.positions(positions)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


class CharLMTask(ModuleTask):
    """Next-character prediction: loss = mean cross-entropy over positions; metric = bits per character."""

    @property
    def metric_name(self) -> str:
        return "bpc"

    def loss_fn(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output.reshape(-1, output.shape[-1]), target.reshape(-1))

    def metric(self, output: torch.Tensor, target: torch.Tensor) -> float:
        return self.loss_fn(output, target).item() / math.log(2)

    def data(self, which: str) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = super().data(which)
        if which == "train" and len(x) > TRAIN_EVAL_WINDOWS:
            index = torch.linspace(0, len(x) - 1, TRAIN_EVAL_WINDOWS).round().long()
            return x[index], y[index]
        return x, y

    @torch.no_grad()
    def evaluate(self, model: nn.Module, which: str = "train") -> tuple[float | None, float | None]:
        """(objective, bpc) over a split, summed chunk by chunk (the logits of a whole split would
        not fit in memory)."""
        x, y = self.data(which)
        if len(x) == 0:
            return None, None
        was_training = model.training
        model.eval()
        chunk = max(1, EVAL_CHUNK // x.shape[1])
        total = sum(F.cross_entropy(model(x[i:i + chunk]).flatten(0, 1), y[i:i + chunk].flatten(), reduction="sum").item()
                    for i in range(0, len(x), chunk))
        model.train(was_training)
        loss = total / y.numel()
        penalty = self.penalty(model)
        return loss + float(penalty), loss / math.log(2)


def build_shakespeare_char(*, seed: int = 0, init: str | None = None, dtype: torch.dtype = torch.float32,
                           l2: float = 0.0, limit: int | None = None, name: str | None = None,
                           **options: Any) -> CharLMTask:
    """Task ``shakespeare-char`` (options: block, width, depth, heads; defaults 64, 128, 4, 4;
    ``chars=N``: only the text's first N characters, split 80/10/10 the same way).

    ``seed`` is unused by the data (the split is the text's order) and kept for the interface."""
    unknown = sorted(set(options) - set(MODEL_OPTIONS) - set(DATA_OPTIONS))
    if unknown:
        raise ValueError(f"unknown option {unknown[0]!r} for task shakespeare-char; allowed: "
                         f"{', '.join(MODEL_OPTIONS + DATA_OPTIONS + ('l2',))}")
    chars = options.pop("chars", None)
    if l2 < 0:
        raise ValueError(f"l2={l2!r} must be >= 0")
    settings = {**DEFAULTS, **{key: int(value) for key, value in options.items()}}
    for key, value in settings.items():
        if value < 1:
            raise ValueError(f"{key}={value} must be a positive integer")
    text = read_shakespeare()
    vocabulary = sorted(set(text))  # of the whole text, so the model is the same whatever ``chars``
    if chars is not None:
        if not isinstance(chars, int) or chars < 20 * settings["block"]:
            raise ValueError(f"chars={chars!r} must be an integer >= 20 x block ({20 * settings['block']})")
        text = text[:chars]
    lookup = {char: code for code, char in enumerate(vocabulary)}
    codes = torch.tensor([lookup[c] for c in text], dtype=torch.int64)
    n_train, n_val = int(0.8 * len(codes)), int(0.1 * len(codes))
    parts = [char_windows(part, settings["block"]) for part in
             (codes[:n_train], codes[n_train:n_train + n_val], codes[n_train + n_val:])]
    split = Split(parts[0][0], parts[0][1], parts[1][0], parts[1][1], parts[2][0], parts[2][1])
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit={limit!r} must be a positive number of training windows")
        split.x_train, split.y_train = split.x_train[:limit], split.y_train[:limit]
    init = check_init(init or "default")
    vocab = len(vocabulary)
    model_settings = dict(settings)

    task = CharLMTask(name=name or "shakespeare-char", kind=CLASSIFICATION, split=split, model_kind="transformer",
                      num_classes=vocab, init=init, l2=l2, model_options=model_settings,
                      default_batch_size=32, default_epochs=2,
                      description=(f"Shakespeare, 7 plays, {len(text):,} characters, vocabulary {vocab}; "
                                   f"windows of {settings['block']}; model: transformer "
                                   f"{settings['depth']}x{settings['width']}, {settings['heads']} heads"),
                      options={"seed": seed, "init": init, "l2": l2, "limit": limit, "chars": chars, **model_settings},
                      model_factory=lambda: CharTransformer(vocab, **model_settings), model_dtype=dtype)
    return task


__all__ = ["build_shakespeare_char", "read_shakespeare", "char_windows", "CharTransformer", "CharLMTask"]
