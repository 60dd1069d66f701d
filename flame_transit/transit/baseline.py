"""A MotionCLIP-style baseline (the paper's comparison method, adapted to single expressions).

An autoencoder over ``[expression, jaw pose]`` whose latent lives in the text-embedding space:
training adds a cosine loss pulling each sample's latent towards the embedding of its text.
At inference there is no encoder: the (unit-normalised) text embedding, scaled to the mean
latent norm seen in training, is decoded directly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Dict, Optional, Tuple

import torch
from torch import nn

from .layers import Normalizer, mlp

__all__ = ["BaselineConfig", "MotionCLIPBaseline", "baseline_loss"]


@dataclass
class BaselineConfig:
    expr_dim: int = 22
    text_dim: int = 384
    hidden: int = 192
    layers: int = 3
    cosine_weight: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "BaselineConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


class MotionCLIPBaseline(nn.Module):
    """Text-aligned autoencoder.

    Example:
        >>> m = MotionCLIPBaseline(BaselineConfig(expr_dim=5, text_dim=8, hidden=16)).eval()
        >>> expr, jaw = m.sample(torch.randn(4, 8))
        >>> expr.shape, jaw.shape
        (torch.Size([4, 5]), torch.Size([4, 3]))
    """

    def __init__(self, cfg: BaselineConfig) -> None:
        super().__init__()
        self.cfg = cfg
        e = cfg.expr_dim
        self.expr_norm = Normalizer(e)
        self.jaw_norm = Normalizer(3)
        self.encoder = mlp(e + 3, cfg.hidden, cfg.text_dim, cfg.layers)
        self.decoder = mlp(cfg.text_dim, cfg.hidden, e + 3, cfg.layers)
        self.register_buffer("latent_norm", torch.ones(()))

    def fit_normalizers(self, expression: torch.Tensor, jaw_pose: torch.Tensor) -> None:
        self.expr_norm.fit(expression)
        self.jaw_norm.fit(jaw_pose)

    def encode(self, expression: torch.Tensor, jaw_pose: torch.Tensor) -> torch.Tensor:
        return self.encoder(torch.cat([self.expr_norm.encode(expression), self.jaw_norm.encode(jaw_pose)], dim=-1))

    def decode(self, latent: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        out = self.decoder(latent)
        e = self.cfg.expr_dim
        return self.expr_norm.decode(out[:, :e]), self.jaw_norm.decode(out[:, e:])

    def forward(self, expression: torch.Tensor, jaw_pose: torch.Tensor) -> Dict[str, torch.Tensor]:
        latent = self.encode(expression, jaw_pose)
        expr_hat, jaw_hat = self.decode(latent)
        return {"latent": latent, "expression": expr_hat, "jaw_pose": jaw_hat}

    @torch.no_grad()
    def sample(self, text: torch.Tensor, context: Optional[torch.Tensor] = None, position: Optional[torch.Tensor] = None, **_: object) -> Tuple[torch.Tensor, torch.Tensor]:
        """Decode the projected text embedding ``(B, D)`` (deterministic; no latent noise)."""
        latent = nn.functional.normalize(text, dim=-1) * self.latent_norm
        return self.decode(latent)


def baseline_loss(model: MotionCLIPBaseline, out: Dict[str, torch.Tensor], expression: torch.Tensor, jaw_pose: torch.Tensor, text: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Reconstruction (standardised L2) + ``cosine_weight`` × (1 − cos(latent, text))."""
    l_e = (model.expr_norm.encode(out["expression"]) - model.expr_norm.encode(expression)).pow(2).sum(-1).mean()
    l_j = (model.jaw_norm.encode(out["jaw_pose"]) - model.jaw_norm.encode(jaw_pose)).pow(2).sum(-1).mean()
    cos = 1.0 - nn.functional.cosine_similarity(out["latent"], text, dim=-1).mean()
    return {"expr": l_e, "pose": l_j, "cosine": cos, "total": l_e + l_j + model.cfg.cosine_weight * cos}
