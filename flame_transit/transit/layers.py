"""Building blocks shared by the transit models: MLPs, normalisation, the text-condition MLP and
the subsampled head forward used by the vertex loss."""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch import nn

__all__ = ["mlp", "Normalizer", "TextCondition", "VertexLayer"]


def mlp(in_dim: int, hidden: int, out_dim: int, layers: int, act: type = nn.SiLU) -> nn.Sequential:
    """``layers`` linear layers (``layers - 1`` hidden of width ``hidden``) with activations between.

    Example:
        >>> net = mlp(3, 8, 2, layers=4)
        >>> sum(isinstance(m, nn.Linear) for m in net), net(torch.zeros(5, 3)).shape
        (4, torch.Size([5, 2]))
    """
    if layers < 1:
        raise ValueError("an MLP needs at least one layer")
    dims = [in_dim] + [hidden] * (layers - 1) + [out_dim]
    mods = []
    for i in range(layers):
        mods.append(nn.Linear(dims[i], dims[i + 1]))
        if i < layers - 1:
            mods.append(act())
    return nn.Sequential(*mods)


class Normalizer(nn.Module):
    """Per-coordinate standardisation with statistics stored as (persistent) buffers.

    Example:
        >>> n = Normalizer(2)
        >>> n.fit(torch.tensor([[0.0, 1.0], [2.0, 1.0]]))
        >>> n.encode(torch.tensor([[2.0, 1.0]])).tolist()
        [[1.0, 0.0]]
    """

    def __init__(self, dim: int, min_std: float = 1e-2) -> None:
        super().__init__()
        self.min_std = min_std
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> None:
        x = torch.as_tensor(x, dtype=self.mean.dtype)
        self.mean.copy_(x.mean(dim=0))
        self.std.copy_(x.std(dim=0, unbiased=False).clamp_min(self.min_std))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean


class TextCondition(nn.Module):
    """MLP features of the text condition: ``[segment embedding, instruction embedding
    (optional), one-hot segment position] -> (B, out_dim)``.

    Used by the CVAE encoders (q(z | x, text)) and, in the "without IFED" ablation, as the only
    condition of the decoders.
    """

    def __init__(self, text_dim: int, out_dim: int, hidden: int, use_context: bool, max_positions: int) -> None:
        super().__init__()
        self.use_context = use_context
        self.max_positions = max_positions
        in_dim = text_dim * (2 if use_context else 1) + max_positions
        self.net = mlp(in_dim, hidden, out_dim, layers=2)

    def forward(
        self, text: torch.Tensor, context: Optional[torch.Tensor] = None, position: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        parts = [text]
        if self.use_context:
            parts.append(context if context is not None else torch.zeros_like(text))
        if position is None:
            position = torch.zeros(text.shape[0], dtype=torch.long, device=text.device)
        parts.append(nn.functional.one_hot(position.clamp(0, self.max_positions - 1), self.max_positions).to(text))
        return self.net(torch.cat(parts, dim=-1))


class VertexLayer(nn.Module):
    """The head's forward on a fixed subset of vertices, for the vertex loss.

    Exact on the subset: it is :meth:`flame_transit.head.Head.subset` (joints regressed from
    the full model), called with the jaw rotation and every other joint at rest. Identity is
    the mean shape (zeros).

    Vertices are returned in units of ``unit``: the RMS displacement of one unit of an
    expression coordinate, so that squared vertex errors are on the scale of squared
    expression-coefficient errors whatever the head.

    Args:
        head: a :class:`~flame_transit.head.Head`.
        max_vertices: subset size (all vertices when the head has fewer).
        seed: which subset (deterministic).
    """

    def __init__(self, head: "torch.nn.Module", max_vertices: int = 512, seed: int = 0) -> None:
        super().__init__()
        v = head.num_vertices
        exprdirs = head.exprdirs.detach().float()
        if v > max_vertices:
            # prefer vertices that expressions move; a fixed random draw weighted by motion
            motion = exprdirs.pow(2).sum(dim=(1, 2)).double().cpu().numpy() + 1e-12
            rng = np.random.default_rng(seed)
            idx = np.sort(rng.choice(v, size=max_vertices, replace=False, p=motion / motion.sum()))
        else:
            idx = np.arange(v)
        self.register_buffer("index", torch.as_tensor(idx, dtype=torch.long), persistent=False)
        self.head = head.subset(idx).float()
        self.unit = float(exprdirs.pow(2).sum(dim=1).mean().sqrt().clamp_min(1e-9))

    @property
    def num_vertices(self) -> int:
        return int(self.index.shape[0])

    def forward(self, expression: torch.Tensor, jaw_pose: torch.Tensor) -> torch.Tensor:
        """Vertices ``(B, V_sub, 3)`` (in units of :attr:`unit`) for expression ``(B, E)`` and
        jaw axis-angle ``(B, 3)``; other joints at rest."""
        pose = torch.cat([jaw_pose.new_zeros(jaw_pose.shape[0], 6), jaw_pose,
                          jaw_pose.new_zeros(jaw_pose.shape[0], 6)], dim=1)
        verts = self.head(expression=expression, pose=pose).vertices[:, : self.num_vertices]
        return verts / self.unit
