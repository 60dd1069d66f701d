"""IFED / I2FET / NED / baseline: shapes, losses, determinism, the vertex layer."""

from __future__ import annotations

import pytest
import torch

from flame_transit.transit.baseline import BaselineConfig, MotionCLIPBaseline, baseline_loss
from flame_transit.transit.i2fet import I2FET, I2FETConfig, LossWeights, cvae_loss, kl_divergence
from flame_transit.transit.ifed import IFED, IFEDConfig, split_tokens
from flame_transit.transit.layers import VertexLayer
from flame_transit.transit.ned import NED, NEDConfig, ned_loss

from .helpers import AU_NAMES, tiny_head

E, D = len(AU_NAMES), 16


def tiny_cfg(**kw) -> I2FETConfig:
    ifed = IFEDConfig(d_model=16, n_heads=2, ff_dim=32, cond_dim=12)
    base = dict(expr_dim=E, text_dim=D, z_expr=8, z_pose=2, hidden=32, pose_hidden=16, text_hidden=16, ifed=ifed)
    base.update(kw)
    return I2FETConfig(**base)


def batch(n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    expr = torch.rand(n, E, generator=g)
    jaw = torch.randn(n, 3, generator=g) * 0.1
    text = torch.nn.functional.normalize(torch.randn(n, D, generator=g), dim=-1)
    ctx = torch.nn.functional.normalize(torch.randn(n, D, generator=g), dim=-1)
    pos = torch.randint(0, 3, (n,), generator=g)
    return expr, jaw, text, ctx, pos


def test_ifed_default_is_paper_best_and_shapes():
    cfg = IFEDConfig()
    assert (cfg.param_layers, cfg.text_layers, cfg.caft_layers) == (2, 1, 1)
    ifed = IFED(IFEDConfig(text_dim=D, d_model=16, n_heads=2, ff_dim=16, cond_dim=10, param_layers=3, text_layers=2, caft_layers=2))
    assert len(ifed.param_branch.layers) == 3 and len(ifed.text_branch.layers) == 2 and len(ifed.caft) == 2
    c_e, c_p = ifed(torch.randn(5, 16), torch.randn(5, 4), torch.randn(5, D), torch.randn(5, D), torch.arange(5))
    assert c_e.shape == (5, 10) and c_p.shape == (5, 10)
    assert torch.isfinite(c_e).all() and torch.isfinite(c_p).all()


def test_ifed_output_depends_on_text():
    torch.manual_seed(0)
    ifed = IFED(IFEDConfig(text_dim=D, d_model=16, n_heads=2, ff_dim=16, cond_dim=8)).eval()
    z_e, z_p = torch.randn(2, 16), torch.randn(2, 4)
    a = ifed(z_e, z_p, torch.randn(2, D))[0]
    b = ifed(z_e, z_p, torch.randn(2, D))[0]
    assert not torch.allclose(a, b)


def test_split_tokens_pads():
    t = split_tokens(torch.ones(3, 7), 2)
    assert t.shape == (3, 2, 4) and float(t[0, 1, 3]) == 0.0


@pytest.mark.parametrize("use_ifed", [True, False])
@pytest.mark.parametrize("conditioning", ["segment+instruction", "segment", "instruction+position"])
def test_i2fet_forward_sample_shapes(use_ifed, conditioning):
    model = I2FET(tiny_cfg(use_ifed=use_ifed, conditioning=conditioning))
    expr, jaw, text, ctx, pos = batch()
    model.fit_normalizers(expr, jaw)
    out = model(expr, jaw, text, ctx, pos, generator=torch.Generator().manual_seed(0))
    assert out["expression"].shape == expr.shape and out["jaw_pose"].shape == jaw.shape
    assert out["mu_e"].shape == (12, 8) and out["mu_p"].shape == (12, 2)
    e, j = model.eval().sample(text, ctx, pos, generator=torch.Generator().manual_seed(1))
    assert e.shape == (12, E) and j.shape == (12, 3)
    assert (model.ifed is None) == (not use_ifed)


def test_sample_is_deterministic_and_temperature_zero_is_mode():
    model = I2FET(tiny_cfg()).eval()
    _, _, text, ctx, pos = batch()
    a = model.sample(text, ctx, pos, generator=torch.Generator().manual_seed(3))
    b = model.sample(text, ctx, pos, generator=torch.Generator().manual_seed(3))
    c = model.sample(text, ctx, pos, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.allclose(a[0], c[0])
    m1 = model.sample(text, ctx, pos, temperature=0.0, generator=torch.Generator().manual_seed(3))
    m2 = model.sample(text, ctx, pos, temperature=0.0, generator=torch.Generator().manual_seed(9))
    assert torch.equal(m1[0], m2[0])


def test_kl_divergence_zero_at_prior_and_positive_elsewhere():
    assert float(kl_divergence(torch.zeros(3, 4), torch.zeros(3, 4))) == 0.0
    assert float(kl_divergence(torch.ones(3, 4), torch.zeros(3, 4))) == pytest.approx(2.0)


def test_loss_finite_and_decreasing_on_tiny_batch():
    torch.manual_seed(0)
    head = tiny_head()
    vl = VertexLayer(head, max_vertices=40)
    model = I2FET(tiny_cfg())
    expr, jaw, text, ctx, pos = batch(16)
    model.fit_normalizers(expr, jaw)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    first = last = None
    for step in range(80):
        out = model(expr, jaw, text, ctx, pos, generator=g)
        terms = cvae_loss(model, out, expr, jaw, LossWeights(kl=0.01), 1.0, vl)
        assert all(torch.isfinite(v) for v in terms.values())
        assert set(terms) == {"expr", "pose", "kl", "vertex", "total"}
        opt.zero_grad()
        terms["total"].backward()
        opt.step()
        if step == 0:
            first = float(terms["total"].detach())
        last = float(terms["total"].detach())
    assert last < 0.5 * first


def test_no_vertex_loss_without_layer():
    model = I2FET(tiny_cfg())
    expr, jaw, text, ctx, pos = batch()
    model.fit_normalizers(expr, jaw)
    terms = cvae_loss(model, model(expr, jaw, text, ctx, pos), expr, jaw, LossWeights(), 1.0, None)
    assert "vertex" not in terms


def test_vertex_layer_matches_head_forward():
    head = tiny_head()
    vl = VertexLayer(head, max_vertices=25, seed=1)
    assert vl.num_vertices == 25
    expr = torch.rand(3, E)
    jaw = torch.randn(3, 3) * 0.3
    pose = torch.cat([torch.zeros(3, 6), jaw, torch.zeros(3, 6)], dim=1)
    ref = head(expression=expr, pose=pose).vertices[:, vl.index]
    assert torch.allclose(vl(expr, jaw) * vl.unit, ref, atol=1e-6)


def test_ned_shapes_and_loss():
    ned = NED(NEDConfig(expr_dim=E, hidden=16, code_dim=8))
    assert sum(isinstance(m, torch.nn.Linear) for m in ned.encoder.modules()) == 4
    assert sum(isinstance(m, torch.nn.Linear) for m in ned.expr_decoder) == 4
    assert sum(isinstance(m, torch.nn.Linear) for m in ned.pose_decoder) == 4
    expr, jaw, *_ = batch()
    e, j = ned(expr, jaw)
    assert e.shape == expr.shape and j.shape == jaw.shape
    terms = ned_loss(ned, expr, jaw, torch.zeros_like(expr), torch.zeros_like(jaw))
    assert torch.isfinite(terms["total"])


def test_baseline_shapes_and_loss():
    m = MotionCLIPBaseline(BaselineConfig(expr_dim=E, text_dim=D, hidden=16))
    expr, jaw, text, *_ = batch()
    m.fit_normalizers(expr, jaw)
    out = m(expr, jaw)
    assert out["latent"].shape == (12, D)
    terms = baseline_loss(m, out, expr, jaw, text)
    assert 0.0 <= float(terms["cosine"].detach()) <= 2.0
    e, j = m.eval().sample(text)
    assert e.shape == (12, E) and j.shape == (12, 3)
