import numpy as np
import pytest
import torch
from PIL import Image

from flame_transit.errors import InputError
from flame_transit.params import FaceParams
from flame_transit.trajectory import Anchors, build_trajectory
from flame_transit.viz import contact_sheet, pick_frames, plot_trajectory


def names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_pick_frames_includes_ends():
    assert pick_frames(10, 3) == [0, 4, 9] or pick_frames(10, 3) == [0, 5, 9]
    assert pick_frames(3, 8) == [0, 1, 2] and pick_frames(1, 4) == [0]


def test_contact_sheet_layout_labels_and_png(tmp_path):
    frames = np.zeros((30, 40, 60, 3), np.uint8)
    frames[:, :, :, 2] = np.arange(30)[:, None, None] * 8
    sheet = contact_sheet(frames, tmp_path / "sheet.png", n=6, labels={0: "disgust", 29: "happiness"}, fps=10,
                          thumb_width=None, columns=3)
    png = np.asarray(Image.open(tmp_path / "sheet.png"))
    np.testing.assert_array_equal(png, sheet)
    assert sheet.shape[1] == 3 * 60 + 4 * 4  # 3 columns with 4 px gaps
    # the thumbnails are the chosen frames (blue channel encodes the frame index)
    assert sheet[4 + 20, 4 + 30, 2] == 0 and sheet[4 + 20, 4 + 2 * 64 + 30, 2] == pick_frames(30, 6)[2] * 8
    # captions are drawn (dark pixels under the first thumbnail)
    assert (sheet[4 + 40:4 + 40 + 20, 4:64].min(axis=2) < 100).any()
    assert names(tmp_path) == ["sheet.png"]


def test_contact_sheet_indices_and_per_frame_labels():
    frames = [np.zeros((20, 20, 3), np.uint8)] * 5
    sheet = contact_sheet(frames, indices=[1, 3], labels=list("abcde"), thumb_width=40)
    assert sheet.shape[1] == 2 * 40 + 3 * 4


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(indices=[0, 9]), "indices"),
        (dict(labels=["a"]), "labels"),
        (dict(n=0), "n must"),
        (dict(fps=0), "fps"),
        (dict(thumb_width=2), "thumb_width"),
    ],
)
def test_contact_sheet_bad_inputs(tmp_path, kwargs, match):
    with pytest.raises(InputError, match=match):
        contact_sheet(np.zeros((5, 8, 8, 3), np.uint8), tmp_path / "s.png", **kwargs)
    assert names(tmp_path) == []


def test_contact_sheet_bad_path_and_frames(tmp_path):
    with pytest.raises(InputError, match="png"):
        contact_sheet(np.zeros((2, 8, 8, 3), np.uint8), tmp_path / "s.jpg")
    with pytest.raises(InputError, match="no frames"):
        contact_sheet([], tmp_path / "s.png")
    assert names(tmp_path) == []


@pytest.fixture
def traj():
    subject = FaceParams(shape=torch.zeros(3), expression=torch.zeros(6), pose=torch.zeros(15))
    expr = torch.zeros(2, 6)
    expr[0, 1], expr[1, 4] = 1.0, 0.8  # coordinates 1 and 4 move; the rest stay at zero
    anchors = Anchors(expression=expr, jaw_pose=[[0.0, 0, 0], [0.3, 0, 0]], labels=["sad", "happy"])
    return build_trajectory(subject, anchors, fps=10, duration=1.0, through_neutral=True)


def test_plot_shows_only_moving_coordinates_and_anchors(tmp_path, traj):
    names_ = [f"AU{i}" for i in range(6)]
    fig = plot_trajectory(traj, names_, tmp_path / "plot.png", title="sad to happy")
    ax_e, ax_j = fig.axes[:2]
    curves = [line.get_label() for line in ax_e.get_lines() if not line.get_label().startswith("_")]
    assert curves == ["AU1", "AU4"]
    vlines = [line for line in ax_e.get_lines() if line.get_linestyle() == "--"]
    assert len(vlines) == 3 and [t.get_text() for t in ax_e.texts] == ["sad", "neutral", "happy"]
    jaw = ax_j.get_lines()[0].get_ydata()
    assert jaw[-1] == pytest.approx(np.degrees(0.3), rel=1e-5)
    im = Image.open(tmp_path / "plot.png")
    assert im.format == "PNG" and im.size[0] > 300
    assert names(tmp_path) == ["plot.png"]


def test_plot_facepararams_with_explicit_anchors_and_caps(traj):
    fig = plot_trajectory(traj.params, None, fps=10, anchor_frames=[0, 20], labels=["a", "b"], max_curves=1)
    ax_e = fig.axes[0]
    assert [t.get_text() for t in ax_e.texts] == ["a", "b"]
    legend = [t.get_text() for t in ax_e.get_legend().get_texts()]
    assert legend == ["exp001", "(+1 more moving)"]
    with pytest.raises(InputError, match="labels"):
        plot_trajectory(traj.params, anchor_frames=[0, 20], labels=["a"])
    with pytest.raises(InputError, match="outside"):
        plot_trajectory(traj.params, anchor_frames=[0, 99])
    with pytest.raises(InputError, match="expression names"):
        plot_trajectory(traj, ["x"])
    with pytest.raises(InputError, match="png"):
        plot_trajectory(traj, None, "plot.pdf")

