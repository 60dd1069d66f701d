"""Gradients of the LBS forward (the autograd paths the fit-free code, training and users rely on)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flame_transit.head import Head, HeadAssets, lbs_forward, load_head

PARENTS = torch.tensor([-1, 0, 1, 1, 1])


def _model(seed: int = 0, v: int = 12, s: int = 3, e: int = 4):
    g = torch.Generator().manual_seed(seed)
    r = lambda *shape, scale=1.0: scale * torch.randn(*shape, generator=g, dtype=torch.float64)
    weights = torch.rand(v, 5, generator=g, dtype=torch.float64) ** 2
    weights = weights / weights.sum(dim=1, keepdim=True)
    j_reg = torch.rand(5, v, generator=g, dtype=torch.float64)
    j_reg = j_reg / j_reg.sum(dim=1, keepdim=True)
    return dict(v_template=r(v, 3, scale=0.1), shapedirs=r(v, 3, s, scale=0.01), exprdirs=r(v, 3, e, scale=0.01),
                posedirs=r(36, v * 3, scale=0.01), j_regressor=j_reg, parents=PARENTS, lbs_weights=weights)


def _forward(m, shape, expression, pose):
    out = lbs_forward(shape, expression, pose, m["v_template"], m["shapedirs"], m["exprdirs"], m["posedirs"],
                      m["j_regressor"], m["parents"], m["lbs_weights"])
    return out.vertices, out.joints


def test_gradcheck_all_inputs():
    m = _model()
    g = torch.Generator().manual_seed(1)
    shape = (0.5 * torch.randn(1, 3, generator=g, dtype=torch.float64)).requires_grad_()
    expr = (0.5 * torch.randn(2, 4, generator=g, dtype=torch.float64)).requires_grad_()
    pose = (0.3 * torch.randn(2, 15, generator=g, dtype=torch.float64))
    pose[0, 3:6] = 0.0  # a joint at rest still gets its gradient
    pose.requires_grad_()
    assert torch.autograd.gradcheck(lambda s, e, p: _forward(m, s, e, p), (shape, expr, pose))


@pytest.mark.parametrize("moving", ["none", "jaw", "neck+jaw"])
def test_gradcheck_fast_skinning_paths(moving):
    """Pose without autograd: only the joints that rotate take part (the skip paths of _skin)."""
    m = _model(seed=2)
    g = torch.Generator().manual_seed(3)
    pose = torch.zeros(3, 15, dtype=torch.float64)
    if moving != "none":
        pose[:, 6:9] = 0.2 * torch.randn(3, 3, generator=g, dtype=torch.float64)
    if moving == "neck+jaw":
        pose[:, 3:6] = 0.1 * torch.randn(3, 3, generator=g, dtype=torch.float64)
    shape = torch.randn(1, 3, generator=g, dtype=torch.float64).requires_grad_()
    expr = torch.randn(3, 4, generator=g, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda s, e: _forward(m, s, e, pose), (shape, expr))


def test_head_subset_equals_full_forward():
    head = load_head(dtype=torch.float64)
    idx = np.array([0, 13, 14, 152, 234, 454, 470])
    sub = head.subset(idx)
    g = torch.Generator().manual_seed(0)
    expr = torch.rand(4, head.num_expression, generator=g, dtype=torch.float64)
    pose = 0.2 * torch.randn(4, 15, generator=g, dtype=torch.float64)
    shape = torch.randn(head.num_shape, generator=g, dtype=torch.float64)
    full = head(shape=shape, expression=expr, pose=pose).vertices[:, idx]
    part = sub(shape=shape, expression=expr, pose=pose).vertices[:, : len(idx)]
    torch.testing.assert_close(part, full, rtol=0, atol=1e-12)
    assert isinstance(sub, Head) and isinstance(sub.assets, HeadAssets)
