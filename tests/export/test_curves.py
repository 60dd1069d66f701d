import csv
import json
import re

import numpy as np
import pytest

from flame_transit import animate
from flame_transit.arkit import ARKIT_NAMES, LIVE_LINK_FACE_NAMES, ROTATION_NAMES
from flame_transit.errors import InputError
from flame_transit.export import export, load_arkit_curves, save_arkit_csv, save_arkit_json


@pytest.fixture(scope="module")
def anim():
    return animate(None, "from sadness to happiness", fps=30, duration=1.2, hold=0.0, seed=3)


def test_csv_has_live_link_face_layout(tmp_path, anim):
    path = anim.save(tmp_path / "curves.csv")
    rows = list(csv.reader(path.open(encoding="utf-8")))
    assert rows[0] == ["Timecode", "BlendShapeCount", *LIVE_LINK_FACE_NAMES, *ROTATION_NAMES]
    assert len(rows[0]) == 2 + 52 + 9 and len(rows) == 1 + anim.num_frames
    assert rows[1][0] == "00:00:00:00.000" and rows[31][0] == "00:00:01:00.000" and rows[30][0] == "00:00:00:29.000"
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d:\d\d\.000", r[0]) and r[1] == "61" for r in rows[1:])
    values = np.array([[float(x) for x in r[2:54]] for r in rows[1:]])
    assert (values >= 0).all() and (values <= 1).all()
    # columns by name, whatever the order
    smile = [float(r[rows[0].index("MouthSmileLeft")]) for r in rows[1:]]
    np.testing.assert_allclose(smile, anim.arkit[:, ARKIT_NAMES.index("mouthSmileLeft")], atol=1e-6)
    back = load_arkit_curves(path)
    assert back.fps == 30.0 and back.names == ARKIT_NAMES
    np.testing.assert_allclose(back.weights, anim.arkit, atol=1e-6)
    assert back.rotations.shape == (anim.num_frames, 9)


def test_json_holds_curves_aus_and_the_table(tmp_path, anim):
    path = anim.save(tmp_path / "curves.json")
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["format"] == "flame_transit.arkit_curves" and doc["names"] == list(ARKIT_NAMES)
    assert doc["fps"] == 30.0 and doc["frames"] == anim.num_frames == len(doc["weights"]) == len(doc["times"])
    assert doc["times"][1] == pytest.approx(1 / 30) and doc["rotation_units"] == "radians"
    assert doc["au_names"] == list(anim.au_names) and np.allclose(doc["au"], anim.au, atol=1e-6)
    assert doc["mapping"]["AU12"] == [["mouthSmileLeft", 1.0], ["mouthSmileRight", 1.0]]
    assert doc["instruction"] == "from sadness to happiness" and doc["seed"] == 3
    assert doc["anchor_labels"] == anim.trajectory.labels
    np.testing.assert_allclose(load_arkit_curves(path).weights, anim.arkit, atol=1e-6)


def test_reads_the_apps_own_csv(tmp_path):
    """A CSV as the app writes it: other column order, more decimals, sub-second timecodes."""
    names = ["Timecode", "BlendShapeCount", "JawOpen", "EyeBlinkLeft", "HeadYaw"]
    lines = [",".join(names)] + [f"14:03:52:{i % 60:02d}.207,61,0.{i:02d}0001,0.5,0.01" for i in range(62)]
    (tmp_path / "take.csv").write_text("\n".join(lines), encoding="utf-8")
    c = load_arkit_curves(tmp_path / "take.csv")
    assert c.fps == 60.0 and c.weights.shape == (62, 52)
    assert c.weights[3, ARKIT_NAMES.index("jawOpen")] == pytest.approx(0.030001)
    assert c.weights[0, ARKIT_NAMES.index("eyeBlinkLeft")] == 0.5 and c.rotations[0, 0] == pytest.approx(0.01)


@pytest.mark.parametrize("body, match", [("a,b\n1,2\n", "none of ARKit"), ("", "empty")])
def test_unreadable_curves_are_clear_errors(tmp_path, body, match):
    (tmp_path / "x.csv").write_text(body, encoding="utf-8")
    with pytest.raises(InputError, match=match):
        load_arkit_curves(tmp_path / "x.csv")


def test_bad_targets_leave_nothing(tmp_path, anim, clip, small_head):
    with pytest.raises(InputError, match=r"\.csv"):
        save_arkit_csv(tmp_path / "x.txt", anim.trajectory, head=anim.head)
    with pytest.raises(InputError, match=r"\.json"):
        save_arkit_json(tmp_path / "x.csv", anim.trajectory, head=anim.head)
    with pytest.raises(InputError, match="JSON"):
        save_arkit_json(tmp_path / "x.json", anim.trajectory, head=anim.head, metadata={"s": {1}})
    with pytest.raises(InputError, match="head"):
        save_arkit_csv(tmp_path / "x.csv", anim.trajectory)
    with pytest.raises(InputError, match="no action-unit trajectory"):  # a FLAME-style clip without AUs
        export(tmp_path / "y.csv", clip[0], head=small_head)
    assert list(tmp_path.iterdir()) == []
