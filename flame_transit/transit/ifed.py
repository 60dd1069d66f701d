"""IFED: the Instruction-driven Facial Expression Decomposer (paper sec. III-B1).

IFED fuses an instruction's text embedding with the (latent) expression and pose codes and
returns two condition vectors, one for the expression decoder and one for the pose decoder of
the I2FET CVAE (:mod:`flame_transit.transit.i2fet`).

Architecture (all sizes from :class:`IFEDConfig`)::

    z_expr (B, Ze) ──split──► n_expr tokens ─┐
    z_pose (B, Zp) ──split──► n_pose tokens ─┴─► + learned positions ─► parameter branch
                                                   (param_layers × TransformerEncoderLayer)
                                                              │ queries
    text (B, D) ──Linear──► replicated n_text tokens ─┐       ▼
    context (B, D) ──Linear──► 1 token (optional)     ├─► text branch ─► CAFT (caft_layers ×
    segment position k ──Embedding──► 1 token         ┘  (text_layers)     cross-attention
                                                                          + FFN, residual, norm)
                                                                                  │
                        mean of expression tokens ─► Linear ─► expression condition (B, C)
                        mean of pose tokens       ─► Linear ─► pose condition (B, C)

The paper's best setting is the default: 2 parameter-branch layers, 1 text-branch layer,
1 CAFT layer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional, Tuple

import torch
from torch import nn

__all__ = ["IFEDConfig", "IFED", "CAFTLayer", "split_tokens"]


@dataclass
class IFEDConfig:
    """Sizes of :class:`IFED`.

    Attributes:
        text_dim: width D of the text embedding.
        z_expr: latent expression code width Ze (split into ``n_expr_tokens`` tokens).
        z_pose: latent pose code width Zp (split into ``n_pose_tokens`` tokens).
        d_model: token width inside IFED.
        n_heads: attention heads.
        ff_dim: feed-forward width.
        param_layers: layers of the parameter (expression/pose token) branch.
        text_layers: layers of the text branch.
        caft_layers: cross-attention fusion layers.
        n_text_tokens: how many tokens the projected text embedding is replicated into.
        use_context: add a token for the full-instruction embedding.
        max_positions: segment positions with their own embedding (later ones share the last).
        cond_dim: width C of each output condition vector.
        dropout: dropout inside the transformer layers.
    """

    text_dim: int = 384
    z_expr: int = 16
    z_pose: int = 4
    d_model: int = 64
    n_heads: int = 4
    ff_dim: int = 128
    param_layers: int = 2
    text_layers: int = 1
    caft_layers: int = 1
    n_expr_tokens: int = 4
    n_pose_tokens: int = 2
    n_text_tokens: int = 4
    use_context: bool = True
    max_positions: int = 8
    cond_dim: int = 64
    dropout: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def split_tokens(z: torch.Tensor, n_tokens: int) -> torch.Tensor:
    """Split ``(B, Z)`` into ``(B, n_tokens, ceil(Z / n_tokens))`` tokens, zero-padding the tail.

    Example:
        >>> split_tokens(torch.arange(5.0)[None], 2).tolist()
        [[[0.0, 1.0, 2.0], [3.0, 4.0, 0.0]]]
    """
    b, width = z.shape
    per = -(-width // n_tokens)
    pad = per * n_tokens - width
    if pad:
        z = nn.functional.pad(z, (0, pad))
    return z.reshape(b, n_tokens, per)


def _encoder(layers: int, cfg: IFEDConfig) -> nn.Module:
    if layers <= 0:
        return nn.Identity()
    layer = nn.TransformerEncoderLayer(
        cfg.d_model, cfg.n_heads, cfg.ff_dim, cfg.dropout, batch_first=True, norm_first=False
    )
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


class CAFTLayer(nn.Module):
    """Cross-attention fusion: parameter tokens (queries) attend to text tokens (keys/values),
    then a position-wise FFN; each sub-block has a residual connection and LayerNorm.

    Example:
        >>> layer = CAFTLayer(16, 2, 32)
        >>> layer(torch.zeros(3, 5, 16), torch.zeros(3, 4, 16)).shape
        torch.Size([3, 5, 16])
    """

    def __init__(self, d_model: int, n_heads: int, ff_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.norm1 = nn.LayerNorm(d_model)
        self.ffn = nn.Sequential(nn.Linear(d_model, ff_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff_dim, d_model))
        self.norm2 = nn.LayerNorm(d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, params: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        fused, _ = self.attn(params, text, text, need_weights=False)
        x = self.norm1(params + self.drop(fused))
        return self.norm2(x + self.drop(self.ffn(x)))


class IFED(nn.Module):
    """Instruction-driven Facial Expression Decomposer.

    Args:
        cfg: sizes (:class:`IFEDConfig`).

    Example:
        >>> ifed = IFED(IFEDConfig(text_dim=8, d_model=16, n_heads=2, ff_dim=16, cond_dim=6))
        >>> c_e, c_p = ifed(torch.zeros(3, 16), torch.zeros(3, 4), torch.zeros(3, 8))
        >>> c_e.shape, c_p.shape
        (torch.Size([3, 6]), torch.Size([3, 6]))
    """

    def __init__(self, cfg: IFEDConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        per_e = -(-cfg.z_expr // cfg.n_expr_tokens)
        per_p = -(-cfg.z_pose // cfg.n_pose_tokens)
        self.expr_token = nn.Linear(per_e, d)
        self.pose_token = nn.Linear(per_p, d)
        self.param_pos = nn.Parameter(torch.randn(cfg.n_expr_tokens + cfg.n_pose_tokens, d) * 0.02)
        self.param_branch = _encoder(cfg.param_layers, cfg)

        self.text_proj = nn.Linear(cfg.text_dim, d)
        self.context_proj = nn.Linear(cfg.text_dim, d) if cfg.use_context else None
        self.position_embed = nn.Embedding(cfg.max_positions, d)
        n_text = cfg.n_text_tokens + 1 + int(cfg.use_context)
        self.text_pos = nn.Parameter(torch.randn(n_text, d) * 0.02)
        self.text_branch = _encoder(cfg.text_layers, cfg)

        self.caft = nn.ModuleList(CAFTLayer(d, cfg.n_heads, cfg.ff_dim, cfg.dropout) for _ in range(cfg.caft_layers))
        self.expr_out = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, cfg.cond_dim))
        self.pose_out = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, cfg.cond_dim))

    def text_tokens(
        self, text: torch.Tensor, context: Optional[torch.Tensor] = None, position: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Text-branch tokens ``(B, T, d_model)`` from the segment embedding ``(B, D)``, the
        optional full-instruction embedding ``(B, D)`` and segment positions ``(B,)``."""
        b = text.shape[0]
        tokens = [self.text_proj(text)[:, None, :].expand(b, self.cfg.n_text_tokens, -1)]
        if self.context_proj is not None:
            ctx = context if context is not None else torch.zeros_like(text)
            tokens.append(self.context_proj(ctx)[:, None, :])
        if position is None:
            position = torch.zeros(b, dtype=torch.long, device=text.device)
        position = position.clamp(0, self.cfg.max_positions - 1)
        tokens.append(self.position_embed(position)[:, None, :])
        x = torch.cat(tokens, dim=1) + self.text_pos
        return self.text_branch(x)

    def forward(
        self,
        z_expr: torch.Tensor,
        z_pose: torch.Tensor,
        text: torch.Tensor,
        context: Optional[torch.Tensor] = None,
        position: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Condition vectors.

        Args:
            z_expr: latent expression codes ``(B, Ze)``.
            z_pose: latent pose codes ``(B, Zp)``.
            text: segment text embeddings ``(B, D)``.
            context: full-instruction embeddings ``(B, D)`` (zeros when None).
            position: segment index in the instruction ``(B,)`` long.

        Returns:
            ``(expression condition (B, C), pose condition (B, C))``.
        """
        cfg = self.cfg
        pe = self.expr_token(split_tokens(z_expr, cfg.n_expr_tokens))
        pp = self.pose_token(split_tokens(z_pose, cfg.n_pose_tokens))
        params = self.param_branch(torch.cat([pe, pp], dim=1) + self.param_pos)
        text_tok = self.text_tokens(text, context, position)
        for layer in self.caft:
            params = layer(params, text_tok)
        c_expr = self.expr_out(params[:, : cfg.n_expr_tokens].mean(dim=1))
        c_pose = self.pose_out(params[:, cfg.n_expr_tokens :].mean(dim=1))
        return c_expr, c_pose
