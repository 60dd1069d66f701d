"""NED: the neutral encoder-decoder (paper sec. III-B).

A fully connected encoder (4 layers) maps an expressive face's ``[expression, jaw pose]`` to a
code; two fully connected decoders (4 layers each) produce the same subject's *neutral*
expression coefficients and neutral jaw pose. Trained on synthetic pairs (an expressive sample
→ the neutral of the same identity / resting style). Used to insert a neutral face between two
expressions (A → neutral → B) and to personalise generated anchors with the subject's resting
face.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Dict, Tuple

import torch
from torch import nn

from .layers import Normalizer, mlp

__all__ = ["NEDConfig", "NED", "ned_loss"]


@dataclass
class NEDConfig:
    """Sizes of :class:`NED` (4-layer encoder and decoders as in the paper)."""

    expr_dim: int = 22
    hidden: int = 128
    code_dim: int = 64
    enc_layers: int = 4
    dec_layers: int = 4

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "NEDConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


class NED(nn.Module):
    """Neutral encoder-decoder.

    Example:
        >>> ned = NED(NEDConfig(expr_dim=5, hidden=16, code_dim=8)).eval()
        >>> expr, jaw = ned(torch.zeros(2, 5), torch.zeros(2, 3))
        >>> expr.shape, jaw.shape
        (torch.Size([2, 5]), torch.Size([2, 3]))
    """

    def __init__(self, cfg: NEDConfig) -> None:
        super().__init__()
        self.cfg = cfg
        e = cfg.expr_dim
        self.in_expr = Normalizer(e)
        self.in_jaw = Normalizer(3)
        self.out_expr = Normalizer(e)
        self.out_jaw = Normalizer(3, min_std=1e-3)
        self.encoder = nn.Sequential(mlp(e + 3, cfg.hidden, cfg.code_dim, cfg.enc_layers), nn.SiLU())
        self.expr_decoder = mlp(cfg.code_dim, cfg.hidden, e, cfg.dec_layers)
        self.pose_decoder = mlp(cfg.code_dim, cfg.hidden, 3, cfg.dec_layers)

    def fit_normalizers(self, expression: torch.Tensor, jaw_pose: torch.Tensor, neutral_expression: torch.Tensor, neutral_jaw: torch.Tensor) -> None:
        self.in_expr.fit(expression)
        self.in_jaw.fit(jaw_pose)
        self.out_expr.fit(neutral_expression)
        self.out_jaw.fit(neutral_jaw)

    def forward(self, expression: torch.Tensor, jaw_pose: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Neutral ``(expression (B, E), jaw (B, 3))`` of the subject showing ``expression`` ``(B, E)``
        with jaw ``(B, 3)``."""
        h = self.encoder(torch.cat([self.in_expr.encode(expression), self.in_jaw.encode(jaw_pose)], dim=-1))
        return self.out_expr.decode(self.expr_decoder(h)), self.out_jaw.decode(self.pose_decoder(h))


def ned_loss(model: NED, expression: torch.Tensor, jaw_pose: torch.Tensor, neutral_expression: torch.Tensor, neutral_jaw: torch.Tensor) -> Dict[str, torch.Tensor]:
    """L2 between predicted and true neutral (standardised output coordinates)."""
    e_hat, j_hat = model(expression, jaw_pose)
    l_e = (model.out_expr.encode(e_hat) - model.out_expr.encode(neutral_expression)).pow(2).sum(-1).mean()
    l_j = (model.out_jaw.encode(j_hat) - model.out_jaw.encode(neutral_jaw)).pow(2).sum(-1).mean()
    return {"expr": l_e, "pose": l_j, "total": l_e + l_j}
