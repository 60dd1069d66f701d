"""I2FET: the instruction-to-facial-expression CVAE (paper sec. III-B1).

Two MLP encoder/decoder pairs, one for the expression coefficients ``(E,)`` and one for the jaw
pose ``(3,)``. Encoders model ``q(z | x, text)``; the decoders take the latent code and a
condition vector produced by :class:`~flame_transit.transit.ifed.IFED` from the latent codes and
the text (or, in the "without IFED" ablation, by an MLP on the text alone)::

    expression ─┐                        ┌─► z_e ─┐              ┌─► c_e ─► expr decoder ─► expression
                ├─ encoders (MLP) ─► μ, σ┤        ├─► IFED(z, text)
    jaw pose ───┘       ▲                └─► z_p ─┘              └─► c_p ─► pose decoder ─► jaw pose
                        │ TextCondition(text)

Loss (:func:`cvae_loss`): expression L2 + pose L2 + β·KL (β warmed up) + vertex L2 through the
head model (:class:`~flame_transit.transit.layers.VertexLayer`). At inference ``z ~ N(0, τ² I)``.

Everything is computed in standardised coordinates (:class:`Normalizer`, statistics of the
training set, stored in the checkpoint); :meth:`I2FET.sample` returns head coordinates.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Dict, Optional, Tuple

import torch
from torch import nn

from .ifed import IFED, IFEDConfig
from .layers import Normalizer, TextCondition, VertexLayer, mlp

__all__ = ["I2FETConfig", "I2FET", "LossWeights", "cvae_loss", "kl_divergence"]

#: how text is fed to the model (see :mod:`flame_transit.transit.conditioning`)
CONDITIONING_MODES = ("segment+instruction", "segment", "instruction+position")


@dataclass
class I2FETConfig:
    """Sizes and switches of :class:`I2FET`.

    Attributes:
        expr_dim: expression coefficients E of the head.
        text_dim: text embedding width D.
        z_expr, z_pose: latent widths.
        hidden: MLP width of the expression encoder/decoder.
        pose_hidden: MLP width of the pose encoder/decoder.
        enc_layers, dec_layers: MLP depths.
        text_hidden: width of the text-condition features fed to the encoders.
        use_ifed: False = the "without IFED" ablation (decoder condition = MLP(text)).
        conditioning: what text the model sees, one of ``"segment+instruction"`` (default: the
            segment phrase plus the full instruction as context), ``"segment"``,
            ``"instruction+position"`` (full instruction + segment index only).
        ifed: IFED sizes (``text_dim``/``z_*`` are kept in sync with the fields above).
    """

    expr_dim: int = 22
    text_dim: int = 384
    z_expr: int = 16
    z_pose: int = 4
    hidden: int = 192
    pose_hidden: int = 64
    enc_layers: int = 3
    dec_layers: int = 3
    text_hidden: int = 128
    use_ifed: bool = True
    conditioning: str = "segment+instruction"
    max_positions: int = 8
    ifed: IFEDConfig = field(default_factory=IFEDConfig)

    def __post_init__(self) -> None:
        if isinstance(self.ifed, dict):
            self.ifed = IFEDConfig(**self.ifed)
        if self.conditioning not in CONDITIONING_MODES:
            raise ValueError(f"conditioning must be one of {CONDITIONING_MODES}, got {self.conditioning!r}")
        self.ifed.text_dim = self.text_dim
        self.ifed.z_expr = self.z_expr
        self.ifed.z_pose = self.z_pose
        self.ifed.max_positions = self.max_positions
        self.ifed.use_context = self.uses_context

    @property
    def uses_context(self) -> bool:
        return self.conditioning == "segment+instruction"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "I2FETConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class LossWeights:
    """Weights of the I2FET loss terms (β is multiplied by the warm-up factor)."""

    expr: float = 1.0
    pose: float = 1.0
    kl: float = 0.05
    vertex: float = 1.0


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) summed over the last dim, averaged over the batch.

    Example:
        >>> float(kl_divergence(torch.zeros(4, 3), torch.zeros(4, 3)))
        0.0
    """
    return (0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)).sum(dim=-1).mean()


class I2FET(nn.Module):
    """The I2FET conditional VAE.

    Example:
        >>> cfg = I2FETConfig(expr_dim=5, text_dim=8, hidden=16, pose_hidden=8, text_hidden=8,
        ...                   ifed=IFEDConfig(d_model=16, n_heads=2, ff_dim=16, cond_dim=8))
        >>> model = I2FET(cfg).eval()
        >>> expr, jaw = model.sample(torch.zeros(3, 8), generator=torch.Generator().manual_seed(0))
        >>> expr.shape, jaw.shape
        (torch.Size([3, 5]), torch.Size([3, 3]))
    """

    def __init__(self, cfg: I2FETConfig) -> None:
        super().__init__()
        self.cfg = cfg
        e, c = cfg.expr_dim, cfg.ifed.cond_dim
        self.expr_norm = Normalizer(e)
        self.jaw_norm = Normalizer(3)
        self.text_cond = TextCondition(cfg.text_dim, cfg.text_hidden, cfg.text_hidden, cfg.uses_context, cfg.max_positions)
        self.expr_encoder = mlp(e + cfg.text_hidden, cfg.hidden, 2 * cfg.z_expr, cfg.enc_layers)
        self.pose_encoder = mlp(3 + cfg.text_hidden, cfg.pose_hidden, 2 * cfg.z_pose, cfg.enc_layers)
        if cfg.use_ifed:
            self.ifed: Optional[IFED] = IFED(cfg.ifed)
            self.cond_expr = self.cond_pose = None
        else:
            self.ifed = None
            self.cond_expr = nn.Linear(cfg.text_hidden, c)
            self.cond_pose = nn.Linear(cfg.text_hidden, c)
        self.expr_decoder = mlp(cfg.z_expr + c, cfg.hidden, e, cfg.dec_layers)
        self.pose_decoder = mlp(cfg.z_pose + c, cfg.pose_hidden, 3, cfg.dec_layers)

    # -- parts ------------------------------------------------------------------------------
    def fit_normalizers(self, expression: torch.Tensor, jaw_pose: torch.Tensor) -> None:
        """Set the standardisation statistics from training data ``(N, E)``, ``(N, 3)``."""
        self.expr_norm.fit(expression)
        self.jaw_norm.fit(jaw_pose)

    def encode(self, expression: torch.Tensor, jaw_pose: torch.Tensor, tfeat: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Posterior parameters ``(mu_e, logvar_e, mu_p, logvar_p)`` from head coordinates."""
        he = self.expr_encoder(torch.cat([self.expr_norm.encode(expression), tfeat], dim=-1))
        hp = self.pose_encoder(torch.cat([self.jaw_norm.encode(jaw_pose), tfeat], dim=-1))
        mu_e, lv_e = he.chunk(2, dim=-1)
        mu_p, lv_p = hp.chunk(2, dim=-1)
        return mu_e, lv_e.clamp(-10, 6), mu_p, lv_p.clamp(-10, 6)

    def conditions(
        self,
        z_expr: torch.Tensor,
        z_pose: torch.Tensor,
        text: torch.Tensor,
        context: Optional[torch.Tensor],
        position: Optional[torch.Tensor],
        tfeat: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        if self.ifed is not None:
            return self.ifed(z_expr, z_pose, text, context if self.cfg.uses_context else None, position)
        return self.cond_expr(tfeat), self.cond_pose(tfeat)

    def decode(self, z_expr: torch.Tensor, z_pose: torch.Tensor, c_expr: torch.Tensor, c_pose: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Head coordinates ``(expression (B, E), jaw (B, 3))``."""
        expr_n = self.expr_decoder(torch.cat([z_expr, c_expr], dim=-1))
        jaw_n = self.pose_decoder(torch.cat([z_pose, c_pose], dim=-1))
        return self.expr_norm.decode(expr_n), self.jaw_norm.decode(jaw_n)

    def text_features(self, text: torch.Tensor, context: Optional[torch.Tensor] = None, position: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.text_cond(text, context if self.cfg.uses_context else None, position)

    # -- training / inference ---------------------------------------------------------------
    def forward(
        self,
        expression: torch.Tensor,
        jaw_pose: torch.Tensor,
        text: torch.Tensor,
        context: Optional[torch.Tensor] = None,
        position: Optional[torch.Tensor] = None,
        generator: Optional[torch.Generator] = None,
    ) -> Dict[str, torch.Tensor]:
        """Reconstruct ``(B, E)`` / ``(B, 3)`` through the posterior (reparameterised)."""
        tfeat = self.text_features(text, context, position)
        mu_e, lv_e, mu_p, lv_p = self.encode(expression, jaw_pose, tfeat)
        eps_e = torch.randn(mu_e.shape, generator=generator, dtype=mu_e.dtype, device=mu_e.device)
        eps_p = torch.randn(mu_p.shape, generator=generator, dtype=mu_p.dtype, device=mu_p.device)
        z_e = mu_e + eps_e * (0.5 * lv_e).exp()
        z_p = mu_p + eps_p * (0.5 * lv_p).exp()
        c_e, c_p = self.conditions(z_e, z_p, text, context, position, tfeat)
        expr_hat, jaw_hat = self.decode(z_e, z_p, c_e, c_p)
        return {"expression": expr_hat, "jaw_pose": jaw_hat, "mu_e": mu_e, "logvar_e": lv_e, "mu_p": mu_p, "logvar_p": lv_p}

    @torch.no_grad()
    def sample(
        self,
        text: torch.Tensor,
        context: Optional[torch.Tensor] = None,
        position: Optional[torch.Tensor] = None,
        *,
        noise: Optional[torch.Tensor] = None,
        temperature: float = 1.0,
        generator: Optional[torch.Generator] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Generate ``(expression (B, E), jaw (B, 3))`` from text with ``z ~ N(0, τ² I)``.

        Args:
            text: segment embeddings ``(B, D)``.
            context: instruction embeddings ``(B, D)`` (used when the model was trained with it).
            position: segment index ``(B,)``.
            noise: standard-normal draws ``(B, z_expr + z_pose)``; drawn from ``generator`` if None.
            temperature: τ; 0 gives the mode of the prior.
        """
        b = text.shape[0]
        zdim = self.cfg.z_expr + self.cfg.z_pose
        if noise is None:
            noise = torch.randn(b, zdim, generator=generator, dtype=text.dtype, device=text.device)
        z = noise.to(text) * float(temperature)
        z_e, z_p = z[:, : self.cfg.z_expr], z[:, self.cfg.z_expr :]
        tfeat = self.text_features(text, context, position)
        c_e, c_p = self.conditions(z_e, z_p, text, context, position, tfeat)
        return self.decode(z_e, z_p, c_e, c_p)


def cvae_loss(
    model: I2FET,
    out: Dict[str, torch.Tensor],
    expression: torch.Tensor,
    jaw_pose: torch.Tensor,
    weights: LossWeights,
    kl_scale: float = 1.0,
    vertex_layer: Optional[VertexLayer] = None,
) -> Dict[str, torch.Tensor]:
    """The I2FET loss terms and their weighted sum ``"total"``.

    Expression and pose L2 are mean squared errors in standardised coordinates (summed over
    coordinates, averaged over the batch); the vertex term is the mean squared vertex error in
    :attr:`VertexLayer.unit` units summed over xyz; KL is summed over latent dims.
    """
    en, jn = model.expr_norm, model.jaw_norm
    l_expr = (en.encode(out["expression"]) - en.encode(expression)).pow(2).sum(-1).mean()
    l_pose = (jn.encode(out["jaw_pose"]) - jn.encode(jaw_pose)).pow(2).sum(-1).mean()
    kl = kl_divergence(out["mu_e"], out["logvar_e"]) + kl_divergence(out["mu_p"], out["logvar_p"])
    terms = {"expr": l_expr, "pose": l_pose, "kl": kl}
    total = weights.expr * l_expr + weights.pose * l_pose + weights.kl * kl_scale * kl
    if vertex_layer is not None and weights.vertex > 0:
        v_hat = vertex_layer(out["expression"], out["jaw_pose"])
        with torch.no_grad():
            v_ref = vertex_layer(expression, jaw_pose)
        l_vert = (v_hat - v_ref).pow(2).sum(-1).mean()
        terms["vertex"] = l_vert
        total = total + weights.vertex * l_vert
    terms["total"] = total
    return terms
