"""The flame-transit command line, run in-process through main() and once as a real subprocess."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from flame_transit.cli import main

PHOTO = os.path.join(os.path.dirname(__file__), "..", "examples", "face.jpg")


def test_info_lists_head_and_assets(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "open-head-v1" in out and "expression coefficients 22" in out
    assert "AU12" in out and "optional assets" in out and "FLAME model" in out


def test_info_on_a_flame_file(capsys, flame_pkl):
    assert main(["info", "--head", str(flame_pkl)]) == 0
    out = capsys.readouterr().out
    assert "vertices 5023" in out and "expression coefficients 100" in out


def test_render_photo_clip_and_extras(tmp_path, capsys):
    out = tmp_path / "clip.mp4"
    code = main(["render", "--image", PHOTO, "--instruction", "turn this face from disgust to happiness",
                 "--out", str(out), "--fps", "8", "--duration", "0.5", "--size", "128", "--quiet",
                 "--sheet", str(tmp_path / "sheet.png"), "--plot", str(tmp_path / "plot.png")])
    assert code == 0
    assert out.stat().st_size > 1000 and (tmp_path / "sheet.png").exists() and (tmp_path / "plot.png").exists()
    assert "disgust -> happiness" in capsys.readouterr().out


def test_single_target_starts_from_the_photo_unless_asked(tmp_path, capsys):
    out = str(tmp_path / "smile.npz")
    common = ["export", "--instruction", "make her smile", "--out", out, "--fps", "5", "--duration", "0.4", "--quiet"]
    assert main(common) == 0
    assert "neutral -> happiness" in capsys.readouterr().out  # no photo: from the bundled head's neutral face
    assert main(common + ["--image", PHOTO]) == 0
    assert "photo -> happiness" in capsys.readouterr().out
    assert main(common + ["--start", "first"]) == 0
    assert " frames, happiness, " in capsys.readouterr().out  # a still of the target, no photo keyframe


def test_warnings_print_as_one_line_in_the_commands_words(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    from flame_transit.encode import load_image

    upside_down = tmp_path / "upside_down.png"
    Image.fromarray(np.ascontiguousarray(load_image(PHOTO)[::-1, ::-1])).save(upside_down)
    assert main(["export", "--image", str(upside_down), "--instruction", "smile", "--out", str(tmp_path / "a.npz"),
                 "--fps", "5", "--duration", "0.4", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "flame-transit export: warning: the face in the photo is upside down" in err
    assert "UserWarning" not in err and ".py:" not in err  # no file, line or source line


def test_output_that_is_the_input_photo_is_refused(tmp_path, capsys):
    import shutil

    photo = tmp_path / "face.png"
    shutil.copy(PHOTO, photo)  # a .jpg copied under a .png name still reads
    before = photo.read_bytes()
    for extra in (["--out", str(photo)], ["--out", str(tmp_path / "clip.png"), "--sheet", str(photo)]):
        assert main(["render", "--image", str(photo), "--instruction", "smile", "--quiet", *extra]) == 2
        assert "is the input photo" in capsys.readouterr().err
    jobs = tmp_path / "jobs.csv"
    jobs.write_text(f"image,instruction,out\nface.png,smile,{photo}\n")
    assert main(["render", "--batch", str(jobs), "--quiet"]) == 2
    assert f"row 2: out {photo} is the input photo" in capsys.readouterr().err
    assert photo.read_bytes() == before


@pytest.mark.parametrize("suffix", ["seq.npz", "anim.glb", "objs/"])
def test_export(tmp_path, suffix):
    target = str(tmp_path / suffix)
    assert main(["export", "--instruction", "from fear to contempt", "--out", target, "--fps", "5",
                 "--duration", "0.4", "--quiet"]) == 0
    assert os.path.exists(target.rstrip("/"))


def test_instruction_words_not_understood_are_said(tmp_path, capsys):
    # the unknown words used to be dropped silently: "de triste a feliz 😀" rendered the emoji alone
    target = tmp_path / "a.npz"
    assert main(["export", "--instruction", "from sad to happy, thanks buddy", "--out", str(target), "--fps", "5",
                 "--duration", "0.4", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "flame-transit export: warning: ignored 'buddy'" in err and target.exists()
    assert main(["export", "--instruction", "de triste a feliz 😀", "--out", str(tmp_path / "b.npz"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "error: could not understand 'de', 'triste', 'feliz'" in err and "Traceback" not in err
    assert not (tmp_path / "b.npz").exists()


@pytest.mark.parametrize("out", ["m.txt", "model"])
def test_train_refuses_a_checkpoint_name_the_loader_cannot_take_before_training(tmp_path, capsys, monkeypatch, out):
    import flame_transit.transit.train as train_mod

    def no_training(*a, **k):
        raise AssertionError("training started")

    monkeypatch.setattr(train_mod, "train", no_training)
    assert main(["train", "--out", str(tmp_path / out), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "flame-transit train: error:" in err and out in err and ".pt" in err and "Traceback" not in err


def test_batch_csv(tmp_path):
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("image,instruction\n,from sad to happy\n,from anger to surprise then neutral\n")
    assert main(["render", "--batch", str(jobs), "--out", str(tmp_path / "clips"), "--look", "shaded",
                 "--fps", "5", "--duration", "0.2", "--size", "64", "--quiet"]) == 0
    assert sorted(p.name for p in (tmp_path / "clips").iterdir()) == ["clip_0000.mp4", "clip_0001.mp4"]


def test_batch_csv_with_excel_bom_reads_the_image_column(tmp_path, capsys):
    # Excel writes a UTF-8 BOM; the first column must still be "image", not "\ufeffimage"
    jobs = tmp_path / "jobs.csv"
    jobs.write_bytes("image,instruction\nmissing_photo.jpg,from sad to happy\n".encode("utf-8-sig"))
    assert main(["render", "--batch", str(jobs), "--out", str(tmp_path / "clips"), "--fps", "5",
                 "--duration", "0.2", "--size", "64", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "missing_photo.jpg" in err and "row 2" in err


_FAST = ["--look", "shaded", "--fps", "5", "--duration", "0.2", "--size", "64", "--quiet"]


def test_batch_bad_row_does_not_stop_the_others(tmp_path, capsys):
    out = tmp_path / "clips"
    jobs = tmp_path / "jobs.csv"
    jobs.write_text(f"image,instruction,out\n,from sad to happy,{out / 'a.mp4'}\nnope.jpg,from sad to happy,{out / 'b.mp4'}\n"
                    f",zzzz qqqq,{out / 'c.mp4'}\n,from anger to fear,{out / 'd.mp4'}\n")
    assert main(["render", "--batch", str(jobs), *_FAST]) == 1
    err = capsys.readouterr().err
    assert "2 of 4 rows failed" in err and "row 3 (" in err and "row 4 (" in err and "nope.jpg" in err
    assert sorted(p.name for p in out.iterdir()) == ["a.mp4", "d.mp4"]


def test_batch_relative_images_resume_and_duplicates(tmp_path, capsys):
    import shutil

    folder = tmp_path / "jobs"
    folder.mkdir()
    shutil.copy(Path(__file__).resolve().parents[1] / "examples" / "face.jpg", folder / "face.jpg")
    out = tmp_path / "clips"
    jobs = folder / "jobs.csv"
    jobs.write_text(f"image,instruction,out\nface.jpg,from sad to happy,{out / 'one.mp4'}\n")
    assert main(["render", "--batch", str(jobs), *_FAST]) == 0  # face.jpg found beside the CSV
    assert (out / "one.mp4").exists()
    before = (out / "one.mp4").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["render", "--batch", str(jobs), "--resume", *_FAST]) == 0
    assert "skipped (--resume)" in capsys.readouterr().out
    assert (out / "one.mp4").stat().st_mtime_ns == before
    jobs.write_text(f"image,instruction,out\n,from sad to happy,{out / 'x.mp4'}\n,from fear to joy,{out / 'x.mp4'}\n")
    assert main(["render", "--batch", str(jobs), *_FAST]) == 2
    assert "rows 2 and 3 both write" in capsys.readouterr().err
    assert not (out / "x.mp4").exists()


def test_batch_relative_out_is_read_from_the_csv_folder_like_image(tmp_path, monkeypatch):
    # the out column used to resolve from the current folder while image resolved from the CSV's
    folder, elsewhere = tmp_path / "jobs", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    jobs = folder / "jobs.csv"
    jobs.write_text("image,instruction,out\n,from sad to happy,clips/one.npz\n")
    monkeypatch.chdir(elsewhere)
    assert main(["export", "--batch", str(jobs), "--fps", "5", "--duration", "0.2", "--quiet"]) == 0
    assert (folder / "clips" / "one.npz").is_file()
    assert not (elsewhere / "clips").exists()


def test_batch_unwritable_out_names_its_row(tmp_path, capsys):
    jobs = tmp_path / "jobs.csv"
    jobs.write_text(f"image,instruction,out\n,smile,{tmp_path / 'a.mp4'}\n,frown,{tmp_path / 'b.xyz'}\n")
    assert main(["render", "--batch", str(jobs), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "jobs.csv row 3: unknown output suffix '.xyz'" in err
    assert not (tmp_path / "a.mp4").exists()  # checked before any row ran


@pytest.mark.parametrize("extra", [["--judge", "fer"], ["--looks", "shaded", "--templates", "2"], ["--image", PHOTO]])
def test_eval_perceptual_options_without_perceptual_are_refused(tmp_path, capsys, extra):
    # ignored, they let the paper protocol train for minutes on synthetic data instead
    assert main(["eval", "--quick", "--out", str(tmp_path / "ev"), *extra]) == 2
    err = capsys.readouterr().err
    assert extra[0] in err and "--perceptual" in err
    assert not (tmp_path / "ev").exists()


def test_batch_binary_csv_named(tmp_path, capsys):
    jobs = tmp_path / "jobs.xlsx"
    jobs.write_bytes(b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\xff\xfe\x80\x81" * 20)
    assert main(["render", "--batch", str(jobs), "--out", str(tmp_path), *_FAST]) == 2
    err = capsys.readouterr().err
    assert "jobs.xlsx" in err and "CSV UTF-8" in err


@pytest.mark.parametrize("argv, message", [
    (["render", "--instruction", "from sad to happy", "--out", "x.avi"], "suffix"),
    (["render", "--instruction", "from sad to happy", "--out", "dir/"], "render writes a file"),
    (["export", "--instruction", "from sad to happy", "--out", "x.mp4"], "suffix"),
    (["render", "--out", "x.mp4"], "--instruction is required"),
    (["render", "--instruction", "from sad to happy", "--out", "x.mp4", "--image", "missing.jpg"], "missing.jpg"),
    (["render", "--instruction", "from sad to happy", "--out", "x.mp4", "--image", "~nosuchuser0/a.jpg"], "no such user"),
    (["render", "--instruction", "from sad to happy", "--out", "~nosuchuser0/x.mp4"], "no such user"),
    (["render", "--instruction", "from sad to happy", "--out", "x.mp4", "--sheet", "s.jpg"], "--sheet writes a PNG"),
    (["render", "--instruction", "from sad to happy", "--out", "x.mp4", "--plot", "p.txt"], "--plot writes a PNG"),
    (["render", "--instruction", "from sad to happy", "--out", "x.mp4", "--renderer", "vulkan"], "unknown renderer"),
    (["export", "--instruction", "from sad to happy", "--out", "~nosuchuser0/x.npz"], "no such user"),
    (["render", "--instruction", "zzzz qqqq", "--out", "x.mp4"], "vocabulary|recognis|expression"),
    (["render", "--batch", "no_such.csv", "--out", "d"], "batch file not found"),
])
def test_clear_errors(tmp_path, capsys, monkeypatch, argv, message):
    import re

    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("flame-transit") and re.search(message, err), err
    assert "Traceback" not in err
    assert not any(p.suffix in (".mp4", ".avi") for p in tmp_path.rglob("*"))


@pytest.mark.parametrize("argv", [["render", "--fps", "0"], ["render", "--fps", "-1"], ["render", "--duration", "nan"],
                                  ["render", "--size", "2"], ["render", "--look", "cartoon"], ["bogus"]])
def test_argparse_rejects(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv + ["--instruction", "x", "--out", "y.mp4"])
    assert exc.value.code == 2


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(instruction=st.text(max_size=80), out=st.text(max_size=30))
@example(instruction="from sad to happy", out="x" * 5000 + ".npz")
@example(instruction="from sad to happy", out="bad\ud800.npz")
def test_fuzz_cli_export_never_tracebacks(tmp_path_factory, instruction, out):
    folder = tmp_path_factory.mktemp("fuzz")
    target = str(folder / out) if out else ""
    try:
        code = main(["export", "--instruction", instruction, "--out", target, "--fps", "4", "--duration", "0.25", "--quiet"])
    except SystemExit as exc:  # argparse: options that look like flags
        code = exc.code
    assert code in (0, 2)


def test_console_script_runs(tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "flame-transit")
    cmd = [exe] if os.path.exists(exe) else [sys.executable, "-m", "flame_transit.cli"]
    res = subprocess.run(cmd + ["render", "--instruction", "from surprise to sadness", "--look", "shaded",
                                "--out", str(tmp_path / "c.gif"), "--fps", "5", "--duration", "0.2", "--size", "64", "--quiet"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "c.gif").exists()


def test_no_face_is_one_line_without_mediapipe_chatter(tmp_path):
    # a fresh process: MediaPipe's C++ notes ("W0000 ... inference_feedback_manager.cc") came on
    # the first run of the face detector, which only the tiled small-face search reaches
    import numpy as np
    from PIL import Image

    Image.fromarray(np.full((512, 512, 3), (30, 120, 200), np.uint8)).save(tmp_path / "sky.png")
    res = subprocess.run([sys.executable, "-m", "flame_transit", "render", "--image", str(tmp_path / "sky.png"),
                          "--instruction", "smile", "--out", str(tmp_path / "c.png"), "--quiet"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("flame-transit render: error: no face found"), res.stderr


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(image=st.text(min_size=1, max_size=40).filter(lambda s: not s.startswith("-")))
@example(image="x" * 5000)
@example(image="bad\ud800name.jpg")
@example(image="nul\x00byte.jpg")
def test_fuzz_image_paths_give_clear_errors(tmp_path_factory, capsys, image):
    folder = tmp_path_factory.mktemp("fuzzimg")
    code = main(["render", "--image", image, "--instruction", "from sad to happy", "--out",
                 str(folder / "c.mp4"), "--fps", "4", "--duration", "0.25", "--quiet"])
    err = capsys.readouterr().err
    if code != 0:  # a path that happens to exist and hold a face would render: fine
        assert code == 2 and "Traceback" not in err and err.startswith("flame-transit render: error:")
        assert not (folder / "c.mp4").exists()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(head=st.text(min_size=1, max_size=40).filter(lambda s: not s.startswith("-")),
       content=st.binary(max_size=64))
def test_fuzz_head_files_give_clear_errors(tmp_path_factory, capsys, head, content):
    folder = tmp_path_factory.mktemp("fuzzhead")
    bogus = folder / "model.pkl"
    bogus.write_bytes(content)
    for path in (head, str(bogus)):
        code = main(["info", "--head", path])
        err = capsys.readouterr().err
        assert code == 2 and "Traceback" not in err and "error:" in err


@pytest.mark.parametrize("value", ["-1", "one", "1.5"])
def test_face_option_checked_by_the_parser(capsys, value):
    with pytest.raises(SystemExit) as exc:
        main(["render", "--instruction", "from sad to happy", "--out", "x.mp4", "--face", value])
    assert exc.value.code == 2 and "face number" in capsys.readouterr().err


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_during_render_leaves_no_temp_file(tmp_path):
    import signal
    import time

    out = tmp_path / "clip.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "flame_transit", "render", "--instruction",
                             "from sad to happy then anger then surprise then fear", "--out", str(out),
                             "--look", "shaded", "--size", "512", "--fps", "60", "--duration", "3", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and not any(p.name.endswith(".tmp.mp4") for p in tmp_path.iterdir()):
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the render finished before a temporary file was seen"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err.decode()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX resource limits")
def test_file_size_limit_gives_one_clean_error(tmp_path):
    import resource

    def limit():  # `ulimit -f 20`: 20 KiB, smaller than the clip's .npz
        resource.setrlimit(resource.RLIMIT_FSIZE, (20 * 1024, 20 * 1024))

    out = tmp_path / "clip.npz"
    proc = subprocess.run([sys.executable, "-m", "flame_transit", "export", "--instruction", "from sad to happy",
                           "--out", str(out), "--fps", "30", "--duration", "3", "--quiet"],
                          capture_output=True, text=True, preexec_fn=limit, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "File too large" in proc.stderr and "Exception ignored" not in proc.stderr and "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []
