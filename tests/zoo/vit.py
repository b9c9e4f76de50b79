"""A tiny ViT (Dosovitskiy et al., 2021): patch embedding, pre-norm transformer blocks (LayerNorm,
multi-head self-attention with batched matmuls and softmax, GELU MLP), mean-pooled tokens, linear head."""

import torch
from torch import nn

from tests.zoo.common import repeats, scaled


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        batch, tokens, dim = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attention = torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)
        return self.proj((attention @ v).transpose(1, 2).reshape(batch, tokens, dim))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm1, self.attention = nn.LayerNorm(dim), Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x):
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TinyViT(nn.Module):
    def __init__(self, *, dim: int, depth: int, heads: int, patch: int, image_size: int, num_classes: int):
        super().__init__()
        self.embed = nn.Conv2d(3, dim, patch, patch)
        self.position = nn.Parameter(torch.randn(1, (image_size // patch) ** 2, dim) * 0.02)
        self.blocks = nn.Sequential(*(Block(dim, heads) for _ in range(depth)))
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, num_classes)

    def forward(self, x):
        x = self.embed(x).flatten(2).transpose(1, 2) + self.position
        return self.head(self.norm(self.blocks(x)).mean(dim=1))


def tiny_vit(*, width: float = 1.0, depth: float = 1.0, num_classes: int = 1000, image_size: int = 224) -> nn.Module:
    """ViT-Tiny-like: dim 192 x width, 4 heads, depth 2; 16 px patches at 224 px (196 tokens), 4 px below."""
    patch = 16 if image_size >= 224 else 4
    return TinyViT(dim=scaled(192, width, divisor=16), depth=repeats(2, depth), heads=4, patch=patch, image_size=image_size,
                   num_classes=num_classes)
