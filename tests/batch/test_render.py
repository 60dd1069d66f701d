"""render/export --batch through flame_transit.batch on the local engine (the CLI's path)."""

from __future__ import annotations

import json
import os

from flame_transit.batch import run_render_batch, worker_models
from flame_transit.cli import main

PHOTO = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "face.jpg")
FAST = dict(fps=5.0, duration=0.2, hold=0.0, size=48, look="shaded", seed=0)


def _jobs(folder, rows):
    return [{"row": i + 2, "image": image, "instruction": text, "out": str(folder / f"clip_{i}{suffix}")}
            for i, (image, text, suffix) in enumerate(rows)]


def test_models_are_loaded_once_for_all_rows(tmp_path, capsys):
    jobs = _jobs(tmp_path, [(None, "from sad to happy", ".mp4"), (PHOTO, "from anger to fear", ".mp4"),
                            (None, "from fear to surprise", ".npz"), (PHOTO, "from joy to disgust", ".glb")])
    result = run_render_batch(jobs, FAST, progress=False)
    rows = sorted(result.rows, key=lambda r: r["row"])
    assert [r["status"] for r in rows] == ["ok"] * 4 and all(r["frames"] >= 2 for r in rows)
    assert len({r["loads"]["models"] for r in rows}) == 1  # no row loaded them again
    assert len({tuple(r["models"][:3]) for r in rows}) == 1  # head, transit model, text encoder
    assert rows[1]["models"][3] == rows[3]["models"][3]  # MediaPipe's graph, on the photo rows
    assert len(rows[0]["models"]) == 3 and len(rows[1]["models"]) == 4
    models = worker_models()
    assert rows[0]["models"][:3] == [id(models.head), id(models.transit), id(models.text_encoder)]
    assert "wrote" in capsys.readouterr().out


def test_cli_report_resume_and_a_corrupt_output(tmp_path, capsys):
    out = tmp_path / "clips"
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("image,instruction\n,from sad to happy\n,zzzz qqqq\n,from anger to fear\n")
    args = ["render", "--batch", str(jobs), "--out", str(out), "--look", "shaded", "--fps", "5",
            "--duration", "0.2", "--size", "48", "--quiet", "--report", str(tmp_path / "report.json")]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "1 of 3 rows failed" in err and "row 3 (bundled head)" in err
    doc = json.loads((tmp_path / "report.json").read_text())
    assert [r["status"] for r in doc["rows"]] == ["ok", "failed", "ok"]
    assert doc["rows"][1]["error"] and doc["rows"][0]["worker"].endswith(f":{os.getpid()}")
    good = out / "clip_0002.mp4"
    good.write_bytes(good.read_bytes()[:300])  # torn copy
    kept = (out / "clip_0000.mp4").stat().st_mtime_ns
    assert main(args + ["--resume"]) == 1
    captured = capsys.readouterr()
    assert "clip_0000.mp4 exists, skipped (--resume)" in captured.out
    assert "redone: ffmpeg cannot decode it" in captured.out
    assert (out / "clip_0000.mp4").stat().st_mtime_ns == kept
    doc = json.loads((tmp_path / "report.json").read_text())
    assert [r["status"] for r in doc["rows"]] == ["skipped", "failed", "ok"]
    assert doc["summary"]["skipped"] == 1


def test_cli_export_batch_writes_npz(tmp_path):
    jobs = tmp_path / "jobs.csv"
    jobs.write_text(f"image,instruction,out\n,from sad to happy,{tmp_path / 'a.npz'}\n")
    assert main(["export", "--batch", str(jobs), "--fps", "5", "--duration", "0.2", "--quiet",
                 "--report", str(tmp_path / "r.csv")]) == 0
    assert (tmp_path / "a.npz").exists() and "ok" in (tmp_path / "r.csv").read_text()


def test_cli_batch_flags_are_checked_before_work(tmp_path, capsys):
    target = tmp_path / "one.mp4"
    assert main(["render", "--instruction", "from sad to happy", "--out", str(target), "--report", "r.csv"]) == 2
    assert "--batch" in capsys.readouterr().err
    for extra in (["--workers", "2"], ["--resume"]):  # were silently ignored on a single clip
        assert main(["render", "--instruction", "from sad to happy", "--out", str(target), *extra]) == 2
        err = capsys.readouterr().err
        assert extra[0] in err and "apply to --batch CSV jobs" in err
    assert not target.exists()
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("image,instruction\n,from sad to happy\n")
    assert main(["render", "--batch", str(jobs), "--out", str(tmp_path), "--report", str(tmp_path / "r.txt")]) == 2
    assert ".csv or .json" in capsys.readouterr().err
    assert main(["render", "--batch", str(jobs), "--out", str(tmp_path), "--workers", "0"]) == 2
    assert "positive whole number" in capsys.readouterr().err
    assert not any(p.suffix == ".mp4" for p in tmp_path.iterdir())


def test_cli_dataset_engine_needs_photos(tmp_path, capsys):
    assert main(["dataset", "--out", str(tmp_path / "ds.npz"), "--engine", "dask"]) == 2
    assert "--ckplus / --csv" in capsys.readouterr().err
    assert not (tmp_path / "ds.npz").exists()


def test_cli_batch_warnings_name_the_row_once_in_the_commands_words(tmp_path, capfd):
    # with --workers the pool's children printed "…/parse.py:121: InstructionWarning: …" plus a
    # source line, and nothing said which row had the unknown word
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("image,instruction,out\n,from sad to happy,a.npz\n,\"from sad to happy, thanks buddy\",b.npz\n")
    assert main(["export", "--batch", str(jobs), "--workers", "2", "--fps", "5", "--duration", "0.2", "--quiet",
                 "--report", str(tmp_path / "r.json")]) == 0
    err = capfd.readouterr().err
    start = f"flame-transit export: warning: row 3 ({tmp_path / 'b.npz'}): ignored 'buddy'"
    said = [line for line in err.splitlines() if "buddy" in line]
    assert len(said) == 1 and said[0].startswith(start)
    assert "InstructionWarning" not in err and ".py:" not in err
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert rows[0]["warnings"] == [] and len(rows[1]["warnings"]) == 1
    assert said[0].endswith(rows[1]["warnings"][0]) and rows[1]["warnings"][0].startswith("ignored 'buddy'")
