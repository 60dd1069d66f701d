"""Stateless linear blend skinning in FLAME layout.

The math is smplx's ``lbs`` (blend shapes, joint regression, pose correctives, rigid transforms
along the kinematic tree, skinning); rotation conversion and the transform chain come from
smplx itself. What differs is the batching, which makes clips cheap:

* the identity blend (``shape``) may have batch size 1 and is then computed once for the whole
  clip instead of once per frame;
* pose correctives are skipped when the model has none or every non-root rotation is zero;
* skinning is one GEMM ``(B, V, J) x (B, J, 16)``.

``tests/head/test_lbs.py`` checks the result against ``smplx.lbs.lbs`` on the same arrays.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from smplx.lbs import batch_rigid_transform, batch_rodrigues

__all__ = ["LBSOutput", "lbs_forward"]


class LBSOutput(NamedTuple):
    vertices: torch.Tensor  #: (B, V, 3) posed vertices
    joints: torch.Tensor  #: (B, J, 3) posed joint locations
    rest_vertices: torch.Tensor  #: (B, V, 3) shaped + expressed vertices before posing


def lbs_forward(
    shape: torch.Tensor,
    expression: torch.Tensor,
    pose: torch.Tensor,
    v_template: torch.Tensor,
    shapedirs: torch.Tensor,
    exprdirs: torch.Tensor,
    posedirs: Optional[torch.Tensor],
    j_regressor: torch.Tensor,
    parents: torch.Tensor,
    lbs_weights: torch.Tensor,
    offsets: Optional[torch.Tensor] = None,
) -> LBSOutput:
    r"""Pose a FLAME-layout model.

    Args:
        shape: identity coefficients :math:`(B_s, S)` with :math:`B_s \in \{1, B\}`.
        expression: expression coefficients :math:`(B, E)`.
        pose: axis-angle per joint :math:`(B, J \cdot 3)`, radians, joint order of ``parents``.
        v_template: :math:`(V, 3)` rest template.
        shapedirs: :math:`(V, 3, S)` identity basis.
        exprdirs: :math:`(V, 3, E)` expression basis.
        posedirs: :math:`((J-1) \cdot 9, V \cdot 3)` pose correctives (smplx layout) or None.
        j_regressor: :math:`(J, V)` dense joint regressor.
        parents: :math:`(J,)` parent index per joint, -1 for the root.
        lbs_weights: :math:`(V, J)` skinning weights.
        offsets: optional per-vertex rest offsets :math:`(B_s, V, 3)` added with the identity.

    Returns:
        :class:`LBSOutput` with vertices :math:`(B, V, 3)` and joints :math:`(B, J, 3)`.
    """
    batch = max(expression.shape[0], pose.shape[0])
    num_joints = j_regressor.shape[0]

    # Identity part: once per distinct shape (usually once per clip).
    v_shaped = v_template + torch.einsum("bs,vcs->bvc", shape, shapedirs)
    if offsets is not None:
        v_shaped = v_shaped + offsets
    v_rest = v_shaped + torch.einsum("be,vce->bvc", expression, exprdirs)
    if v_rest.shape[0] != batch:
        v_rest = v_rest.expand(batch, -1, -1)

    joints_rest = torch.einsum("jv,bvc->bjc", j_regressor, v_rest)
    rot_mats = batch_rodrigues(pose.reshape(-1, 3)).view(batch, num_joints, 3, 3)

    v_posed = v_rest
    if posedirs is not None and posedirs.numel() > 0 and bool(pose[:, 3:].any()):
        ident = torch.eye(3, dtype=pose.dtype, device=pose.device)
        pose_feature = (rot_mats[:, 1:] - ident).reshape(batch, -1)
        v_posed = v_rest + (pose_feature @ posedirs).view(batch, -1, 3)

    joints, transforms = batch_rigid_transform(rot_mats, joints_rest, parents, dtype=pose.dtype)
    # (V, J) x (B, J, 16) -> (B, V, 4, 4); only the top 3x4 block is needed.
    blended = torch.matmul(lbs_weights, transforms.reshape(batch, num_joints, 16)).view(
        batch, -1, 4, 4
    )
    vertices = torch.einsum("bvij,bvj->bvi", blended[:, :, :3, :3], v_posed) + blended[:, :, :3, 3]
    return LBSOutput(vertices=vertices, joints=joints, rest_vertices=v_rest)
