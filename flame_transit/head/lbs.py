"""Stateless linear blend skinning in FLAME layout.

The math is smplx's ``lbs`` (blend shapes, joint regression, pose correctives, rigid transforms
along the kinematic tree, skinning); what differs is the data layout and the batching, which
make clips cheap (``benchmarks/bench_lbs.py`` measures it against smplx):

* the identity blend (``shape``) may have batch size 1 and is then computed once for the whole
  clip instead of once per frame; the joint regressor is applied to it once, and to the
  expression basis once per model (:func:`prepare_lbs_bases`), so per-frame rest joints are a
  ``(B, E) x (E, J*3)`` product instead of a pass over all vertices;
* pose correctives and expression blend are **one GEMM** ``(B, 9k + E') x (9k + E', 3V)``
  added to the shared identity (``addmm``) over a basis stored once as
  ``[correctives; expression]``. Only the ``k`` joints that rotate somewhere in the batch take
  part and only the ``E'`` expression coefficients given (DECA: 50 of FLAME's 100): the jaw's
  9-row block sits next to the expression rows, so a jaw-only clip multiplies ``9 + E'``
  contiguous rows, not ``36 + E`` (rows of a joint with zero rotation in every frame multiply
  zeros). Under autograd on ``pose`` all rows are used, so a zero rotation still gets its
  gradient;
* vertices stay *planar* (``(B, 3, V)``, one contiguous row per coordinate) from the GEMM to
  skinning, where the elementwise work vectorises;
* skinning skips joints whose transform equals the root's: with skinning weights that sum to
  one, the result is the root transform applied to ``x + sum_j w_j (A'_j x - x)`` over the few
  joints ``j`` that move relative to the root (the jaw in a typical clip): one batched 3x3
  product per such joint instead of a ``J``-way blend of 4x4 matrices per vertex. Otherwise
  (neck or several joints rotate, weights not normalised) the blended 3x4 transforms are one
  GEMM ``(B*12, J) x (J, V)`` followed by three contiguous multiply-adds;
* the last operation writes the ``(B, V, 3)`` result one coordinate at a time (strided
  stores, contiguous loads), which is cheaper than a transpose-copy.

``tests/head/test_flame_io.py`` checks the result against ``smplx.lbs.lbs`` on the same arrays
(float32 and float64, ≤ 1e-5 m).
"""

from __future__ import annotations

from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple

import torch
from smplx.lbs import batch_rodrigues  # axis-angle -> (N, 3, 3), smplx's conditioning

__all__ = ["LBSOutput", "LBSBases", "lbs_forward", "prepare_lbs_bases", "batch_rodrigues", "rigid_transforms"]


class LBSOutput(NamedTuple):
    vertices: torch.Tensor  #: (B, V, 3) posed vertices
    joints: torch.Tensor  #: (B, J, 3) posed joint locations
    #: (B, V, 3) shaped + expressed vertices before posing; None unless ``lbs_forward`` was
    #: asked for them (``return_rest=True``): the fast path blends correctives in the same GEMM
    rest_vertices: Optional[torch.Tensor]


class LBSBases(NamedTuple):
    """Per-model arrays re-laid out for the batched forward (see :func:`prepare_lbs_bases`)."""

    #: (P + E, 3V) planar blend basis: P pose-corrective rows in 9-row joint blocks ordered as
    #: ``pose_joints``, then the E expression rows; each row is x-plane, y-plane, z-plane
    blenddirs: torch.Tensor
    num_expression: int  #: E
    #: joint index of each 9-row corrective block, in row order: the joint that moves most
    #: often (FLAME's jaw) last, next to the expression rows, so that the blocks of the joints
    #: that move plus the leading expression rows are one contiguous slice of ``blenddirs``
    pose_joints: Tuple[int, ...]
    joint_exprdirs: torch.Tensor  #: (E, J*3) joint regressor applied to the expression basis
    weights_t: torch.Tensor  #: (J, V) skinning weights, transposed
    parents: Tuple[int, ...]  #: parent per joint, -1 for the root
    unit_weights: bool = False  #: every vertex's weights sum to 1 (within 1e-6)

    @property
    def exprdirs(self) -> torch.Tensor:
        return self.blenddirs[self.blenddirs.shape[0] - self.num_expression:]

    @property
    def posedirs(self) -> torch.Tensor:
        return self.blenddirs[: self.blenddirs.shape[0] - self.num_expression]


def _pose_block_order(num_joints: int) -> List[int]:
    # Row order. FLAME: the jaw (2) moves in nearly every clip, then the neck, then the eyes,
    # so the jaw's block comes last (next to the expression rows), the eyes' first.
    order = list(range(num_joints - 1, 0, -1))
    if num_joints == 5:
        order = [4, 3, 1, 2]
    return order


def prepare_lbs_bases(
    exprdirs: torch.Tensor,
    posedirs: Optional[torch.Tensor],
    j_regressor: torch.Tensor,
    lbs_weights: torch.Tensor,
    parents: Sequence[int],
) -> LBSBases:
    r"""Re-lay out a model's arrays once for :func:`lbs_forward`.

    Args:
        exprdirs: :math:`(V, 3, E)` expression basis.
        posedirs: :math:`((J-1) \cdot 9, V \cdot 3)` pose correctives (smplx layout), empty or None.
        j_regressor: :math:`(J, V)` joint regressor.
        lbs_weights: :math:`(V, J)` skinning weights.
        parents: :math:`(J,)` parent per joint (-1 for the root); parents come before children.

    Example:
        >>> b = prepare_lbs_bases(torch.zeros(4, 3, 2), None, torch.ones(5, 4) / 4,
        ...                       torch.ones(4, 5) / 5, [-1, 0, 1, 1, 1])
        >>> b.blenddirs.shape, b.joint_exprdirs.shape, b.weights_t.shape, b.unit_weights
        (torch.Size([2, 12]), torch.Size([2, 15]), torch.Size([5, 4]), True)
    """
    v, _, e = exprdirs.shape
    num_joints = j_regressor.shape[0]
    parents = tuple(int(p) for p in (parents.tolist() if torch.is_tensor(parents) else parents))
    for j, p in enumerate(parents):
        if (j == 0) != (p < 0) or p >= j:
            raise ValueError(f"kinematic tree must list parents before children, got {parents}")
    rows = []
    order: List[int] = []
    if posedirs is not None and posedirs.numel() > 0:
        if posedirs.shape[0] != (num_joints - 1) * 9:
            raise ValueError(f"posedirs has {posedirs.shape[0]} rows, expected {(num_joints - 1) * 9}")
        order = _pose_block_order(num_joints)
        blocks = posedirs.reshape(num_joints - 1, 9, v, 3)[[j - 1 for j in order]]
        rows.append(blocks.permute(0, 1, 3, 2).reshape(len(order) * 9, 3 * v))
    rows.append(exprdirs.permute(2, 1, 0).reshape(e, 3 * v))
    joint_expr = torch.einsum("jv,vce->ejc", j_regressor, exprdirs).reshape(e, num_joints * 3)
    unit = bool((lbs_weights.double().sum(dim=1) - 1).abs().max() <= 1e-6) if v else True
    return LBSBases(
        blenddirs=torch.cat(rows, dim=0).contiguous(),
        num_expression=e,
        pose_joints=tuple(order),
        joint_exprdirs=joint_expr.contiguous(),
        weights_t=lbs_weights.t().contiguous(),
        parents=parents,
        unit_weights=unit,
    )


def rigid_transforms(
    rot_mats: torch.Tensor, joints: torch.Tensor, parents: Sequence[int]
) -> Tuple[torch.Tensor, torch.Tensor]:
    r"""Forward kinematics.

    Args:
        rot_mats: local rotations :math:`(B, J, 3, 3)`, each about its joint's rest location.
        joints: rest joint locations :math:`(B, J, 3)`.
        parents: parent per joint, -1 for the root, parents before children.

    Returns:
        posed joints :math:`(B, J, 3)` and the skinning transforms :math:`(B, J, 3, 4)` that map
        a rest-pose point to its posed location (``x -> G_j x + t_j``).
    """
    glob: List[torch.Tensor] = []
    posed: List[torch.Tensor] = []
    for j, p in enumerate(parents):
        if p < 0:
            glob.append(rot_mats[:, j])
            posed.append(joints[:, j])
        else:
            glob.append(torch.matmul(glob[p], rot_mats[:, j]))
            offset = (joints[:, j] - joints[:, p]).unsqueeze(-1)
            posed.append(posed[p] + torch.matmul(glob[p], offset).squeeze(-1))
    g = torch.stack(glob, dim=1)  # (B, J, 3, 3)
    posed_joints = torch.stack(posed, dim=1)  # (B, J, 3)
    trans = posed_joints - torch.matmul(g, joints.unsqueeze(-1)).squeeze(-1)
    return posed_joints, torch.cat([g, trans.unsqueeze(-1)], dim=-1)


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
    bases: Optional[LBSBases] = None,
    return_rest: bool = False,
) -> LBSOutput:
    r"""Pose a FLAME-layout model.

    Args:
        shape: identity coefficients :math:`(B_s, S')` with :math:`B_s \in \{1, B\}`,
            :math:`S' \le S` (missing trailing coefficients are zero).
        expression: expression coefficients :math:`(B, E')`, :math:`E' \le E` (zero-padded).
        pose: axis-angle per joint :math:`(B, J \cdot 3)`, radians, joint order of ``parents``.
        v_template: :math:`(V, 3)` rest template.
        shapedirs: :math:`(V, 3, S)` identity basis.
        exprdirs: :math:`(V, 3, E)` expression basis.
        posedirs: :math:`((J-1) \cdot 9, V \cdot 3)` pose correctives (smplx layout) or None.
        j_regressor: :math:`(J, V)` dense joint regressor.
        parents: :math:`(J,)` parent index per joint, -1 for the root.
        lbs_weights: :math:`(V, J)` skinning weights.
        offsets: optional per-vertex rest offsets :math:`(B_s, V, 3)` added with the identity.
        bases: the same model's :func:`prepare_lbs_bases` (built here when not given; pass it
            for speed, as :class:`~flame_transit.head.Head` does).
        return_rest: also return the vertices before posing (costs a separate GEMM pass).

    Returns:
        :class:`LBSOutput` with vertices :math:`(B, V, 3)` and joints :math:`(B, J, 3)`.

    Example:
        >>> v, j = 4, 5
        >>> out = lbs_forward(torch.zeros(1, 2), torch.zeros(3, 2), torch.zeros(3, 15),
        ...                   torch.rand(v, 3), torch.zeros(v, 3, 2), torch.zeros(v, 3, 2), None,
        ...                   torch.ones(j, v) / v, torch.tensor([-1, 0, 1, 1, 1]),
        ...                   torch.ones(v, j) / j)
        >>> out.vertices.shape, out.joints.shape
        (torch.Size([3, 4, 3]), torch.Size([3, 5, 3]))
    """
    if bases is None:
        bases = prepare_lbs_bases(exprdirs, posedirs, j_regressor, lbs_weights, parents)
    batch = max(expression.shape[0], pose.shape[0])
    num_joints = j_regressor.shape[0]
    num_verts = v_template.shape[0]
    n_shape, n_expr = shape.shape[1], expression.shape[1]

    # Identity part, interleaved (B_s, V, 3): once per distinct shape (usually once per clip).
    flat_shapedirs = shapedirs.reshape(num_verts * 3, -1)[:, :n_shape]
    v_shaped = v_template + torch.matmul(shape, flat_shapedirs.t()).view(-1, num_verts, 3)
    if offsets is not None:
        v_shaped = v_shaped + offsets
    joints_shaped = torch.matmul(j_regressor, v_shaped)  # (B_s, J, 3)
    base = v_shaped.transpose(1, 2).reshape(v_shaped.shape[0], 3 * num_verts)  # planar

    if expression.shape[0] != batch:
        expression = expression.expand(batch, -1)
    if pose.shape[0] != batch:
        pose = pose.expand(batch, -1)
    # Rest joints: linear in the expression, through the pre-regressed basis.
    joints_rest = joints_shaped + torch.matmul(
        expression, bases.joint_exprdirs[:n_expr]
    ).view(batch, num_joints, 3)
    rot_mats = batch_rodrigues(pose.reshape(-1, 3)).view(batch, num_joints, 3, 3)

    # Which joints rotate somewhere in the batch (None under autograd on the pose: then all
    # of them count, so that a zero rotation still gets its gradient).
    moving: Optional[List[bool]] = None
    if not (pose.requires_grad and torch.is_grad_enabled()):
        moving = pose.detach().view(batch, num_joints, 3).ne(0).any(dim=2).any(dim=0).tolist()
    used = 0  # trailing corrective blocks needed (the jaw's is the last)
    num_blocks = len(bases.pose_joints)
    if num_blocks:
        if moving is None:
            used = num_blocks
        else:
            used = max((num_blocks - i for i, j in enumerate(bases.pose_joints) if moving[j]), default=0)

    # Pose correctives + expression blend: one GEMM onto the planar identity, over the rows
    # [blocks of the joints used | first n_expr expression rows], a contiguous slice.
    first = 9 * (num_blocks - used)
    last = 9 * num_blocks + n_expr
    rest_vertices = None
    if return_rest:
        v_rest = torch.addmm(base, expression, bases.blenddirs[9 * num_blocks: last])
        rest_vertices = v_rest.view(batch, 3, num_verts).transpose(1, 2)
    if used:
        eye = torch.eye(3, dtype=rot_mats.dtype, device=rot_mats.device)
        joints_used = list(bases.pose_joints[num_blocks - used:])
        feature = (rot_mats[:, joints_used] - eye).reshape(batch, used * 9)
        if return_rest:
            v_posed = torch.addmm(v_rest, feature, bases.blenddirs[first: 9 * num_blocks])
        else:
            coeffs = torch.cat([feature, expression], dim=1)
            v_posed = torch.addmm(base, coeffs, bases.blenddirs[first:last])
    else:
        v_posed = v_rest if return_rest else torch.addmm(base, expression, bases.blenddirs[first:last])

    joints, transforms = rigid_transforms(rot_mats, joints_rest, bases.parents)
    vertices = _skin(v_posed.view(batch, 3, num_verts), transforms, moving, bases)
    return LBSOutput(vertices=vertices, joints=joints, rest_vertices=rest_vertices)


def _interleaver(like: torch.Tensor, grad: bool) -> Callable[..., torch.Tensor]:
    """``emit(op, a, b, ...)``: ``op(a, b, ...)`` on planar ``(B, 3, V or 1)`` operands, stored as
    ``(B, V, 3)``. Without autograd it runs per coordinate into the strided destination (no
    separate transpose pass); autograd does not allow ``out=``, so then it transposes a copy."""
    batch, _, num_verts = like.shape

    if grad:
        def emit(op: Callable[..., torch.Tensor], *args: torch.Tensor) -> torch.Tensor:
            return op(*args).transpose(1, 2).contiguous()
    else:
        def emit(op: Callable[..., torch.Tensor], *args: torch.Tensor) -> torch.Tensor:
            out = like.new_empty(batch, num_verts, 3)
            for i in range(3):
                op(*(a[:, i] for a in args), out=out[:, :, i])
            return out
    return emit


def _skin(
    x: torch.Tensor, transforms: torch.Tensor, moving: Optional[List[bool]], bases: LBSBases
) -> torch.Tensor:
    """Skin planar rest vertices ``x (B, 3, V)`` with transforms ``(B, J, 3, 4)`` -> ``(B, V, 3)``.

    ``moving[j]`` says whether joint ``j`` rotates anywhere in the batch (None: assume all).
    A joint none of whose ancestors below the root moves has the root's transform, so with
    weights that sum to one per vertex the skinned point is the root transform applied to
    ``x + sum_j w_j (A'_j x - x)`` over the few joints ``j`` whose transform relative to the
    root, ``A'_j = A_0^-1 A_j``, is not the identity.
    """
    batch, _, num_verts = x.shape
    num_joints = transforms.shape[1]
    parents = bases.parents
    grad = torch.is_grad_enabled() and (x.requires_grad or transforms.requires_grad)
    emit = _interleaver(x, grad)

    active: List[int] = []
    if moving is not None and bases.unit_weights:
        chain = [False] * num_joints  # a joint below the root, or one of its ancestors, rotates
        for j in range(1, num_joints):
            chain[j] = moving[j] or (parents[j] > 0 and chain[parents[j]])
        active = [j for j in range(1, num_joints) if chain[j]]
    if moving is None or not bases.unit_weights or len(active) > 2:
        # General case: blended 3x4 transforms T[b, k, i, v] = sum_j A[b, j, i, k] w[v, j].
        a = transforms.permute(0, 3, 2, 1).reshape(batch * 12, num_joints)
        blend = torch.matmul(a, bases.weights_t).view(batch, 4, 3, num_verts)
        xk = x.view(batch, 3, 1, num_verts)
        acc = torch.addcmul(blend[:, 3], blend[:, 0], xk[:, 0])
        acc.addcmul_(blend[:, 1], xk[:, 1])
        return emit(torch.addcmul, acc, blend[:, 2], xk[:, 2].expand(batch, 3, num_verts))

    root = transforms[:, 0]
    if not active and not moving[0]:
        return x.transpose(1, 2).contiguous()
    rel = transforms[:, active]  # (B, m, 3, 4)
    if moving[0]:  # express the others relative to the root: A'_j = A_0^-1 A_j (A_0 is rigid)
        rot_t = root[:, :, :3].transpose(1, 2).unsqueeze(1)
        rel = torch.cat([rot_t @ rel[..., :3], rot_t @ (rel[..., 3:] - root[:, None, :, 3:])], dim=-1)
    y = x
    eye = torch.eye(3, dtype=x.dtype, device=x.device)
    for i, j in enumerate(active):
        u = torch.baddbmm(rel[:, i, :, 3:], rel[:, i, :, :3] - eye, x)  # (A'_j - I) x
        u = u.mul_(bases.weights_t[j])
        if i == len(active) - 1 and not moving[0]:
            return emit(torch.add, y, u)
        y = y + u
    return emit(torch.add, torch.bmm(root[:, :, :3], y), root[:, :, 3:].expand(batch, 3, 1))
