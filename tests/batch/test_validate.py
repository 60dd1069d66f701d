"""The resume check: complete outputs pass with their frame count, torn or corrupt ones do not."""

from __future__ import annotations

import json
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flame_transit import animate
from flame_transit.batch import check_output
from flame_transit.io_utils import DIRECTORY_MARKER

FILES = ["clip.mp4", "clip.gif", "clip.npz", "clip.glb", "sheet.png", "objs"]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("outputs")
    anim = animate(None, "from sadness to happiness", fps=5, duration=0.4, hold=0.0, size=48)
    for name in FILES:
        anim.save(str(folder / name) + ("/" if name == "objs" else ""))
    return folder, anim.num_frames


@pytest.mark.parametrize("name", FILES)
def test_complete_outputs_pass_with_their_frame_count(outputs, name):
    folder, frames = outputs
    got, problem = check_output(folder / name)
    assert problem is None
    assert got == (None if name == "sheet.png" else frames)
    if name != "sheet.png":
        assert check_output(folder / name, expected_frames=frames)[1] is None
        assert "earlier run wrote" in check_output(folder / name, expected_frames=frames + 2)[1]


@pytest.mark.parametrize("name", ["clip.mp4", "clip.gif", "clip.npz", "clip.glb", "sheet.png"])
@pytest.mark.parametrize("keep", [0.5, -40])
def test_torn_files_fail(outputs, tmp_path, name, keep):
    folder, _ = outputs
    data = (folder / name).read_bytes()
    cut = int(len(data) * keep) if keep > 0 else len(data) + keep
    torn = tmp_path / name
    torn.write_bytes(data[:cut])
    frames, problem = check_output(torn)
    assert problem is not None and problem != "missing"


def test_missing_and_odd_targets(tmp_path, outputs):
    assert check_output(tmp_path / "none.mp4") == (None, "missing")
    (tmp_path / "notes.txt").write_text("x")
    assert "cannot check" in check_output(tmp_path / "notes.txt")[1]
    folder, _ = outputs
    objs = tmp_path / "objs"
    shutil.copytree(folder / "objs", objs)
    manifest = json.loads((objs / DIRECTORY_MARKER).read_text())
    (objs / manifest["files"][-1]).write_text("")
    assert "missing or empty" in check_output(objs)[1]
    shutil.rmtree(objs)
    objs.mkdir()
    assert "manifest" in check_output(objs)[1]


def test_npz_without_the_clip_arrays(tmp_path):
    import numpy as np

    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    assert "lacks" in check_output(tmp_path / "other.npz")[1]
    np.savez(tmp_path / "skew.npz", format="x", expression=np.zeros((3, 2)), pose=np.zeros((4, 15)),
             vertices=np.zeros((3, 5, 3)), faces=np.zeros((1, 3)), fps=5.0, times=np.zeros(3))
    assert "disagree" in check_output(tmp_path / "skew.npz")[1]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400), suffix=st.sampled_from([".mp4", ".gif", ".npz", ".glb", ".png"]))
def test_random_bytes_never_pass_and_never_raise(tmp_path, data, suffix):
    path = tmp_path / f"junk{suffix}"
    path.write_bytes(data)
    frames, problem = check_output(path)
    assert problem is not None
