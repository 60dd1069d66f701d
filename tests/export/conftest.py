import pytest
import torch

from flame_transit.head import load_head
from flame_transit.params import FaceParams
from flame_transit.trajectory import Anchors, build_trajectory
from tests.helpers import make_flame_arrays, write_flame_npz


@pytest.fixture(scope="session")
def small_head(tmp_path_factory):
    """A FLAME-format head (random values, FLAME's keys) small enough for fast tests."""
    arrays = make_flame_arrays(seed=5, num_vertices=120, num_faces=200, num_shape=8, num_expression=6)
    path = write_flame_npz(tmp_path_factory.mktemp("head") / "small_flame.npz", arrays)
    return load_head(path, num_shape=8)


@pytest.fixture(scope="session")
def clip(small_head):
    """(trajectory, vertices) for a 13-frame disgust -> neutral -> happiness clip."""
    head = small_head
    g = torch.Generator().manual_seed(0)
    subject = FaceParams(
        shape=torch.randn(head.num_shape, generator=g),
        expression=torch.zeros(head.num_expression),
        pose=0.05 * torch.randn(15, generator=g),
        cam=torch.tensor([4.0, 0.0, 0.01]),
        head_name=head.name,
        offsets=0.001 * torch.randn(head.num_vertices, 3, generator=g),
        image_size=(480, 640),
        crop_to_image=torch.tensor([[100.0, 0, 320], [0, -100.0, 240]], dtype=torch.float64),
        vertices_2d=torch.rand(head.num_vertices, 2, generator=g) * 400,
        fit_rms=0.012,
    )
    anchors = Anchors(
        expression=torch.randn(2, head.num_expression, generator=g),
        jaw_pose=torch.tensor([[0.05, 0.0, 0.0], [0.3, 0.02, 0.0]]),
        labels=["disgust", "happiness"],
    )
    traj = build_trajectory(subject, anchors, fps=12, duration=0.5, through_neutral=True)
    with torch.no_grad():
        out = head(shape=traj.params.shape, expression=traj.params.expression, pose=traj.params.pose,
                   offsets=traj.params.offsets)
    return traj, out.vertices.numpy()
