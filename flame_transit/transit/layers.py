"""Building blocks shared by the transit models: MLPs, normalisation, the text-condition MLP and
the subsampled head forward used by the vertex loss."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["mlp", "Normalizer", "TextCondition", "VertexLayer"]

#: FLAME joint order: global, neck, jaw, left eye, right eye
_JAW = 2


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

    Exact on the subset: joints are regressed from the *full* rest mesh (the regression is
    linear, so ``J(e) = J_0 + (J_reg @ exprdirs) e`` is precomputed), then the subset is posed
    with the same rigid transforms and skinning weights as :class:`~flame_transit.head.Head`
    (pose correctives included when the head has them). Identity is the mean shape (zeros).

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
            motion = exprdirs.pow(2).sum(dim=(1, 2)).double().numpy() + 1e-12
            rng = np.random.default_rng(seed)
            idx = rng.choice(v, size=max_vertices, replace=False, p=motion / motion.sum())
            idx = np.sort(idx)
        else:
            idx = np.arange(v)
        index = torch.as_tensor(idx, dtype=torch.long)
        j_reg = head.j_regressor.detach().float()
        template = head.v_template.detach().float()
        self.register_buffer("index", index, persistent=False)
        self.register_buffer("template", template[index], persistent=False)
        self.register_buffer("exprdirs", exprdirs[index], persistent=False)
        self.register_buffer("joints0", j_reg @ template, persistent=False)
        self.register_buffer("joint_dirs", torch.einsum("jv,vce->jce", j_reg, exprdirs), persistent=False)
        self.register_buffer("weights", head.lbs_weights.detach().float()[index], persistent=False)
        parents = head.parents.detach().clone()
        if (parents == _JAW).any():
            raise ValueError("VertexLayer assumes no joint is a child of the jaw (FLAME's tree)")
        self.register_buffer("parents", parents, persistent=False)
        posedirs = head.posedirs.detach().float()
        if posedirs.numel():
            pd = posedirs.reshape(posedirs.shape[0], v, 3)[:, index].reshape(posedirs.shape[0], -1)
        else:
            pd = posedirs
        self.register_buffer("posedirs", pd, persistent=False)
        unit = exprdirs.pow(2).sum(dim=1).mean().sqrt().clamp_min(1e-9)
        self.unit = float(unit)

    @property
    def num_vertices(self) -> int:
        return int(self.index.shape[0])

    def forward(self, expression: torch.Tensor, jaw_pose: torch.Tensor) -> torch.Tensor:
        """Vertices ``(B, V_sub, 3)`` (in units of :attr:`unit`) for expression ``(B, E)`` and
        jaw axis-angle ``(B, 3)``; other joints at rest.

        With every other joint at rest, LBS reduces to a rotation about the jaw joint blended by
        the jaw's skinning weight: ``v = v_rest + w_jaw (R_jaw - I)(v_rest - J_jaw)`` (plus the
        pose correctives of the jaw rotation), which is what is computed.
        """
        from smplx.lbs import batch_rodrigues

        v_rest = self.template + torch.einsum("be,vce->bvc", expression, self.exprdirs)
        jaw_joint = self.joints0[_JAW] + expression @ self.joint_dirs[_JAW].T  # (B, 3)
        rot = batch_rodrigues(jaw_pose)  # (B, 3, 3)
        if self.posedirs.numel():
            ident = torch.eye(3, dtype=rot.dtype, device=rot.device)
            feat = expression.new_zeros(expression.shape[0], self.posedirs.shape[0])
            feat[:, (_JAW - 1) * 9 : _JAW * 9] = (rot - ident).reshape(-1, 9)
            v_rest = v_rest + (feat @ self.posedirs).view(expression.shape[0], -1, 3)
        rel = v_rest - jaw_joint[:, None, :]
        moved = torch.einsum("brc,bvc->bvr", rot, rel) - rel
        verts = v_rest + self.weights[:, _JAW, None] * moved
        return verts / self.unit
