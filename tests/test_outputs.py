"""One output-format layer: one suffix table, one path check, one set of numeric limits."""


import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flame_transit import animate
from flame_transit.checks import MAX_FPS, MAX_SIZE, MIN_FPS, MIN_SIZE, check_fps
from flame_transit.errors import InputError
from flame_transit.outputs import OUTPUT_FORMATS, check_output_path, output_format, suffixes


def test_the_table_is_what_save_and_export_accept(tmp_path):
    from flame_transit.export import EXPORT_SUFFIXES, export

    assert set(EXPORT_SUFFIXES) == {s for s, f in OUTPUT_FORMATS.items() if f.kind == "export"}
    assert suffixes("any") == suffixes("render") + suffixes("export")
    for suffix in suffixes("render"):
        with pytest.raises(InputError, match="suffix"):
            export(tmp_path / f"x{suffix}")
    assert list(tmp_path.iterdir()) == []


def test_every_format_is_written_by_animation_save(tmp_path):
    anim = animate(None, "from anger to happiness", fps=5, duration=0.4, hold=0.0, size=64)
    for suffix, fmt in OUTPUT_FORMATS.items():
        out = anim.save(tmp_path / f"out_{fmt.name}{suffix}" if suffix else str(tmp_path / "objs") + "/")
        assert out.exists() and output_format(out).name == fmt.name


@pytest.mark.parametrize(
    "path, kind, match",
    [
        ("clip.npz", "render", "suffix"),
        ("folder/", "render", "render writes a file"),
        ("clip.mp4", "export", "suffix"),
        ("clip.fbx", "any", "unknown output suffix '.fbx'"),
        ("", "any", "empty"),
        ("clip.csv", "nothing", "kind"),
        (5, "any", "must be a str or a path, got int"),
        (b"clip.mp4", "any", "must be a str or a path, got bytes"),
        (["clip.mp4"], "any", "got list"),
    ],
)
def test_path_check_errors(path, kind, match):
    with pytest.raises(InputError, match=match):
        check_output_path(path, kind=kind)


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=12))
def test_any_typed_path_is_a_format_or_one_clear_error(text):
    try:
        fmt = output_format(text)
    except InputError as exc:
        assert any(w in str(exc) for w in ("suffix", "empty", "expand")), exc
        return
    assert fmt in OUTPUT_FORMATS.values()


def test_fps_limits_are_the_same_everywhere(tmp_path):
    """animate, the trajectory, the video writer and the exporters share MIN_FPS..MAX_FPS."""
    import torch

    from flame_transit.params import FaceParams
    from flame_transit.trajectory import Anchors, build_trajectory
    from flame_transit.video_writer import write_video

    assert (MIN_FPS, MAX_FPS) == (1.0, 240.0) and check_fps(MAX_FPS) == MAX_FPS
    subject = FaceParams(shape=torch.zeros(2), expression=torch.zeros(3), pose=torch.zeros(15))
    anchors = Anchors(expression=torch.zeros(1, 3), jaw_pose=torch.zeros(1, 3))
    build_trajectory(subject, anchors, fps=MAX_FPS, duration=0.01)
    anim = animate(None, "happy", fps=MAX_FPS, duration=0.02, hold=0.0)
    for bad in (MAX_FPS + 1, MIN_FPS / 2):
        with pytest.raises(InputError, match="fps"):
            animate(None, "happy", fps=bad)
        with pytest.raises(InputError, match="fps"):
            build_trajectory(subject, anchors, fps=bad)
        with pytest.raises(InputError, match="fps"):
            write_video(np.zeros((2, 8, 8, 3), np.uint8), tmp_path / "x.mp4", fps=bad)
        with pytest.raises(InputError, match="fps"):
            anim.save(tmp_path / "x.npz", fps=bad)
    assert list(tmp_path.iterdir()) == []


def test_size_limits_are_the_same_everywhere():
    from flame_transit.cli import build_parser
    from flame_transit.render.inputs import check_size

    assert check_size(MAX_SIZE) == (MAX_SIZE, MAX_SIZE)
    with pytest.raises(InputError, match=str(MAX_SIZE)):
        check_size(MAX_SIZE + 1)
    for bad in (MAX_SIZE + 1, MIN_SIZE - 1):
        with pytest.raises(InputError, match="size"):
            animate(None, "happy", size=bad)
        with pytest.raises(SystemExit):
            build_parser().parse_args(["render", "--size", str(bad)])
    assert build_parser().parse_args(["render", "--size", str(MAX_SIZE)]).size == MAX_SIZE


def test_output_limits_are_defined_only_in_checks():
    """No MAX_/MIN_ constant of its own in the modules that make outputs: they import checks'."""
    import re
    from pathlib import Path

    pkg = Path(__file__).resolve().parent.parent / "flame_transit"
    files = [pkg / n for n in ("api.py", "cli.py", "outputs.py", "trajectory.py", "video_writer.py")]
    files += sorted((pkg / "export").glob("*.py")) + sorted((pkg / "render").rglob("*.py"))
    own = [(f.name, m) for f in files for m in re.findall(r"^((?:MAX|MIN)_\w+)\s*(?::[^=\n]*)?=", f.read_text(), re.M)]
    assert own == []
