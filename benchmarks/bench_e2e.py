"""End to end: photo + instruction → 60-frame 512² photo-textured clip → mp4, warm and cold.

The goals are ratios against a reference measured in the same run, so machine load hits both:

* **Warm clip** (goal ≤ 2.0× the reference encode): in one fresh subprocess (torch's default
  threads, as a user gets), one cold call first, then repeatedly ``animate(photo, instruction,
  size=512)`` + ``save('.mp4')`` (the path users take: frames rendered while ffmpeg encodes),
  each round followed by the **reference**: a plain H.264 encode of the very same frames with
  imageio's libx264 defaults. Also broken down by stage from ``Animation.timings`` (load_head,
  text_parse, encode, transit, trajectory, head) plus render (``Animation.frames``) and video.
  A cProfile of one warm run is kept. The warm clips reuse one photo, so its detection, fit
  and photo textures come from the content-keyed memos (``flame_transit._memo``), as in a
  stimulus set of one face; interleaved with them, clips of a photo not seen before (one pixel
  changed) give the same ratio without the memos.
* **1024² scaling** (goal: render time grows no faster than the pixel count, 4×): the same clip
  rendered at 512² and 1024², interleaved in the same process.
* **Memory**: peak RSS of that subprocess (``resource.getrusage``), i.e. of the whole job.
* **Cold CLI** (goal ≤ 1.5× the bare-import process): ``flame-transit render --image …
  --instruction … --out x.mp4`` as a subprocess, wall time from start to exit, interleaved with
  ``python -c "import torch, mediapipe"``, with the package's bytecode compiled first (as for
  an installed wheel); where the time goes from ``python -X importtime`` (top imports) and a
  cProfile of the same command in-process.
"""

from __future__ import annotations

import compileall
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from .common import REPO, Goal, Section, fmt_s, run_json_subprocess

GOAL_WARM_RATIO = 2.0  # warm clip / reference encode of its frames
GOAL_COLD_RATIO = 1.5  # cold CLI / bare `import torch, mediapipe` process
GOAL_SCALE = 4.0  # render time at 1024² / at 512² (the pixel count ratio)
SCALE_SIZE = 1024
WARM_GOAL = "warm clip (60 frames 512², photo look, animate + save mp4) vs a reference H.264 encode of its frames"
FRAMES = 60
SIZE = 512
INSTRUCTION = "Turn this face from disgust to happiness."
PHOTO = REPO / "examples" / "face.jpg"

_WORKER = r"""
import cProfile, io, json, os, pstats, resource, sys, tempfile, time
cfg = json.loads(sys.argv[1])
t0 = time.perf_counter()
import numpy as np
import torch
default_threads = torch.get_num_threads()
settings = [t or default_threads for t in cfg.get("thread_settings") or [None]]
import flame_transit
from flame_transit import animate
t_import = time.perf_counter() - t0
def rss_mb():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
rss_import = rss_mb()
out_dir = tempfile.mkdtemp(prefix="ft_e2e_")
path = os.path.join(out_dir, "clip.mp4")
kw = dict(size=cfg["size"], fps=30.0, hold=0.0, duration=cfg["frames"] / 30.0, seed=0)
if cfg.get("model"):
    kw["model"] = cfg["model"]
if cfg.get("renderer"):
    kw["renderer"] = cfg["renderer"]

rss_steps = {}

def job(record_rss=False):
    t = time.perf_counter()
    anim = animate(cfg["image"], cfg["instruction"], **kw)
    t_animate = time.perf_counter() - t
    if record_rss:
        rss_steps["after animate() (encode, text, transit, trajectory)"] = rss_mb()
    _ = anim.vertices                 # head (LBS), timed by the Animation
    if record_rss:
        rss_steps["after head"] = rss_mb()
    t1 = time.perf_counter()
    frames = anim.frames              # render all frames
    t_render = time.perf_counter() - t1
    if record_rss:
        rss_steps["after render (60 frames held)"] = rss_mb()
    t2 = time.perf_counter()
    anim.save(path)                   # mp4 encode of the rendered frames
    t_video = time.perf_counter() - t2
    if record_rss:
        rss_steps["after mp4 encode"] = rss_mb()
    total = time.perf_counter() - t
    st = dict(anim.timings)
    st["render"], st["video"] = t_render, t_video
    st.pop("head", None)
    st["head"] = anim.timings.get("head", 0.0)
    return anim, frames, st, total

def stream_job(image=None):
    # the path users take: animate, then save('.mp4') renders frames while ffmpeg encodes
    t = time.perf_counter()
    anim = animate(cfg["image"] if image is None else image, cfg["instruction"], **kw)
    anim.save(path)
    return time.perf_counter() - t

from PIL import Image
photo_pixels = np.asarray(Image.open(cfg["image"]).convert("RGB"))
def new_photo(r):
    # the same face with one pixel changed: a photo the content-keyed memos have not seen, so
    # its detection, fit and textures are made again (flame_transit._memo)
    img = photo_pixels.copy()
    img[0, 0, 0] ^= 1 + r % 255
    return img

import imageio.v2 as imageio
ref_path = os.path.join(out_dir, "reference.mp4")
def reference_job(frames):
    # the reference: a plain H.264 encode of the same frames, imageio's libx264 defaults
    t = time.perf_counter()
    imageio.mimwrite(ref_path, list(frames), fps=30, codec="libx264")
    return time.perf_counter() - t

def render_only(size):
    a = animate(cfg["image"], cfg["instruction"], **dict(kw, size=size))
    _ = a.vertices
    t = time.perf_counter()
    _ = a.frames
    return time.perf_counter() - t

# frame count: one transition of `duration` s; adjust once so the clip has exactly `frames`
t = time.perf_counter()
anim, frames, first_stages, first_total = job(record_rss=True)
first_total = time.perf_counter() - t
if anim.num_frames != cfg["frames"]:
    kw["duration"] = kw["duration"] * cfg["frames"] / anim.num_frames
runs = {str(t): [] for t in settings}
stream_runs, ref_runs, fresh_runs, fresh_ref_runs = [], [], [], []
ref_frames = np.asarray(frames)
for r in range(cfg["repeats"]):  # streaming path (+ its reference) and thread settings interleaved
    order = [("stream", default_threads), ("fresh", default_threads)] + [("split", nt) for nt in settings]
    for mode, nt in (order if r % 2 == 0 else order[::-1]):
        torch.set_num_threads(nt)
        anim = frames = None  # drop the previous clip first: peak RSS is that of one clip
        if mode == "stream":
            stream_runs.append(stream_job())
            ref_runs.append(reference_job(ref_frames))
            continue
        if mode == "fresh":
            fresh_runs.append(stream_job(new_photo(r)))
            fresh_ref_runs.append(reference_job(ref_frames))
            continue
        anim, frames, st, total = job()
        runs[str(nt)].append({"total": total, "stages": st})
scale_runs = {str(cfg["size"]): [], str(cfg.get("scale_size")): []}
if cfg.get("scale_size"):
    render_only(cfg["scale_size"])  # warm the larger framebuffer
    for r in range(cfg["repeats"]):
        sizes = [cfg["size"], cfg["scale_size"]]
        for sz in (sizes if r % 2 == 0 else sizes[::-1]):
            scale_runs[str(sz)].append(render_only(sz))
ref_frames = None
torch.set_num_threads(default_threads)
prof_text = prof_text_own = ""
if cfg.get("profile"):
    anim = frames = None
    pr = cProfile.Profile(); pr.enable(); anim, frames, _, _ = job(); pr.disable()
    buf = io.StringIO()
    pstats.Stats(pr, stream=buf).sort_stats("cumulative").print_stats(30)
    prof_text = buf.getvalue()
    buf = io.StringIO()
    pstats.Stats(pr, stream=buf).sort_stats("tottime").print_stats(15)
    prof_text_own = buf.getvalue()
renderer_info = "?"
try:
    r = anim._renderer()
    starter = getattr(r, "_context", None)  # start it (GL context) so it can name the device
    if callable(starter):
        starter()
    renderer_info = str(r.device_info)
    r.close()
except Exception as exc:
    renderer_info = f"? ({exc})"
print(json.dumps({
    "import": t_import, "first_total": first_total, "first_stages": first_stages, "runs": runs,
    "num_frames": int(anim.num_frames), "frame_shape": list(frames.shape),
    "file_bytes": os.path.getsize(path), "renderer": renderer_info,
    "default_threads": default_threads,
    "stream_runs": stream_runs,
    "ref_runs": ref_runs,
    "fresh_runs": fresh_runs,
    "fresh_ref_runs": fresh_ref_runs,
    "scale_runs": scale_runs,
    "rss_after_import_mb": rss_import,
    "rss_steps_mb": rss_steps,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    "profile": prof_text,
    "profile_own": prof_text_own,
}))
"""

_CLI_PROFILE = r"""
import cProfile, io, json, pstats, sys, time
argv = json.loads(sys.argv[1])
pr = cProfile.Profile()
t0 = time.perf_counter()
pr.enable()
from flame_transit.cli import main
rc = main(argv)
pr.disable()
wall = time.perf_counter() - t0
buf = io.StringIO()
pstats.Stats(pr, stream=buf).sort_stats("cumulative").print_stats(25)
print(json.dumps({"rc": rc, "wall": wall, "profile": buf.getvalue()}))
"""


_CLI_TIMED = r"""
import json, sys, time
t0 = time.perf_counter()
from flame_transit.cli import COMMAND_GC_THRESHOLD, main
t1 = time.perf_counter()
import gc
gc.set_threshold(*COMMAND_GC_THRESHOLD)  # the collector as the flame-transit command sets it (cli.console)
rc = main(json.loads(sys.argv[1]))
t2 = time.perf_counter()
print(json.dumps({"rc": rc, "import_cli": t1 - t0, "main": t2 - t1}), flush=True)
gc.freeze()  # as the flame-transit command does on exit
"""


def _short(text: str) -> str:
    site = f"{sys.prefix}/lib/python{sys.version_info[0]}.{sys.version_info[1]}/site-packages/"
    text = text.replace(str(REPO) + "/", "").replace(site, "")
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("ncalls"):
            return "\n".join(l for l in lines[max(0, i - 1):] if l.strip())
    return text.strip()


#: (label, pattern in a pstats line) of the calls that bound the warm clip, in report order
_EVIDENCE = (
    ("render total (Animation.frames)", "api.py", "(frames)"),
    ("GL submit: draw calls (llvmpipe transforms and bins on the calling thread)", "backends/gl.py", "(_submit)"),
    ("GL read-back (waits for llvmpipe's threads, which rasterise while the next frame is built)", "",
     "'read_into' of"),
    ("photo-texture build per clip (render/photo.py build)", "render/photo.py", "(build)"),
    ("of which scipy binary dilation", "", "_nd_image.binary_erosion"),
    ("per-frame geometry and draw lists (render/scene.py _photo_frame)", "render/scene.py", "(_photo_frame)"),
    ("numpy stack (frame assembly)", "shape_base.py", "(stack)"),
    ("mp4 encode (video_writer.py _write_mp4)", "video_writer.py", "(_write_mp4)"),
    ("of which imageio-ffmpeg polling sleeps at close", "", "time.sleep"),
    ("transit (generate_anchors)", "anchors.py", "(generate_anchors)"),
    ("encode (photo → parameters)", "encode/encoder.py", "(encode)"),
)


def _profile_evidence(text: str) -> List[str]:
    """Cumulative seconds of the calls in :data:`_EVIDENCE` found in a pstats listing."""
    found: List[str] = []
    seen = set()
    for label, file_part, func_part in _EVIDENCE:
        for line in text.splitlines():
            if func_part in line and file_part in line and label not in seen:
                cols = line.split()
                try:
                    cum = float(cols[3])
                except (IndexError, ValueError):
                    continue
                seen.add(label)
                found.append(f"{label} {fmt_s(cum)}")
                break
    return found


def _cli_args(out: Path, size: int) -> List[str]:
    return ["render", "--image", str(PHOTO), "--instruction", INSTRUCTION, "--out", str(out),
            "--size", str(size), "--quiet"]


def _cli_cmd(args: List[str]) -> List[str]:
    """The installed ``flame-transit`` entry point, else the same via ``python -c``."""
    exe = shutil.which("flame-transit") or str(Path(sys.executable).with_name("flame-transit"))
    if Path(exe).exists():
        return [exe, *args]
    return [sys.executable, "-c", "import sys; from flame_transit.cli import main; sys.exit(main(sys.argv[1:]))", *args]


def _importtime(cmd_args: List[str]) -> Tuple[List[Tuple[str, float, float]], float]:
    """Top-level imports by cumulative time (s) from ``python -X importtime`` of a CLI run."""
    code = "import sys; from flame_transit.cli import main; sys.exit(main(sys.argv[1:]))"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code, *cmd_args], cwd=REPO,
                          capture_output=True, text=True, timeout=600, env=env)
    rows: List[Tuple[str, float, float]] = []
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)", line)
        if m and len(m.group(3)) <= 1:  # top-level (not nested) imports
            rows.append((m.group(4), int(m.group(2)) / 1e6, int(m.group(1)) / 1e6))
    total = sum(r[1] for r in rows)
    rows.sort(key=lambda r: -r[1])
    return rows, total


def _gpu_render(sec: Section, cfg: Dict[str, Any]) -> None:
    """With a GPU: the same warm clip through the PyTorch3D renderer (when installed)."""
    import importlib.util

    import torch

    if not torch.cuda.is_available():
        sec.notes.append("no GPU in this run: the PyTorch3D renderer path was not measured.")
        return
    name = torch.cuda.get_device_name(0)
    if importlib.util.find_spec("pytorch3d") is None:
        sec.notes.append(f"GPU present ({name}) but PyTorch3D is not installed: its renderer path was not measured.")
        return
    try:
        res = run_json_subprocess(_WORKER, timeout=600, args=[json.dumps(dict(cfg, renderer="pytorch3d",
                                                                               thread_settings=[None], profile=False))])
    except Exception as exc:
        sec.notes.append(f"PyTorch3D renderer run on {name} failed: {exc}")
        return
    key = str(res["default_threads"])
    runs = res["runs"][key]
    tot = sorted(r["total"] for r in runs)[len(runs) // 2]
    ren = sorted(r["stages"]["render"] for r in runs)[len(runs) // 2]
    t = sec.table(f"GPU: the same warm clip with renderer='pytorch3d' on {name} ({res['renderer']}).",
                  ["median warm total", "of which render"])
    t.rows.append([fmt_s(tot), fmt_s(ren)])


def fallback_checkpoint(folder: Path) -> Tuple[Optional[str], str]:
    """``(None, "bundled checkpoint")`` when the bundled transit checkpoint exists, else a
    random-init I2FET of the default configuration saved under ``folder`` (same architecture
    and cost, untrained output) so the pipeline's speed can be measured."""
    from flame_transit.head import load_head
    from flame_transit.transit.checkpoint import default_checkpoint_path, save_checkpoint
    from flame_transit.transit.i2fet import I2FET, I2FETConfig

    try:
        if default_checkpoint_path().exists():
            return None, "bundled checkpoint"
    except Exception:
        pass
    head = load_head()
    model = I2FET(I2FETConfig(expr_dim=head.num_expression)).eval()
    meta = dict(head_name=head.name, head_kind=head.kind, expression_dim=head.num_expression,
                expression_names=list(head.expression_names), text_encoder="minilm-l6-v2", text_dim=384)
    path = save_checkpoint(Path(folder) / "random_i2fet.pt", model, meta=meta)
    return str(path), "random-init I2FET (bundled checkpoint missing; same architecture and cost)"


def run(quick: bool = False, rounds: Optional[int] = None) -> Section:
    t_start = time.perf_counter()
    sec = Section("e2e", "4–5. End to end: animate + render + mp4 (60 frames, 512²), cold CLI, memory")
    repeats = rounds or (2 if quick else 5)
    if not PHOTO.exists():
        sec.notes.append(f"{PHOTO} missing: not measured")
        return sec
    ckpt_dir = Path(tempfile.mkdtemp(prefix="ft_e2e_ckpt_"))
    try:
        return _run(sec, quick, repeats, ckpt_dir, t_start)
    finally:
        shutil.rmtree(ckpt_dir, ignore_errors=True)


def _run(sec: Section, quick: bool, repeats: int, ckpt_dir: Path, t_start: float) -> Section:
    try:
        model, model_desc = fallback_checkpoint(ckpt_dir)
    except Exception as exc:
        model, model_desc = None, f"bundled checkpoint (fallback failed: {exc})"
    sec.notes.append(f"Transit model: {model_desc}.")
    cfg = {"image": str(PHOTO), "instruction": INSTRUCTION, "size": SIZE, "frames": FRAMES,
           "repeats": repeats, "profile": True, "model": model}
    cfg["thread_settings"] = [None] if quick else [None, 1]
    cfg["scale_size"] = SCALE_SIZE
    warm: Optional[Dict[str, Any]] = None
    try:
        warm = run_json_subprocess(_WORKER, timeout=600, args=[json.dumps(cfg)])
    except Exception as exc:
        sec.notes.append(f"end-to-end run failed: {exc}")
    if warm is None:
        sec.goals.append(Goal(WARM_GOAL, f"≤ {GOAL_WARM_RATIO:g}×", "failed", None, "see the notes"))
    else:
        def med_of(values: List[float]) -> float:
            v = sorted(values)
            n = len(v)
            return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2

        default = str(warm["default_threads"])
        keys = [default] + [k for k in warm["runs"] if k != default]
        runs = warm["runs"]
        stages = list(runs[default][0]["stages"])
        meds = {k: {st: med_of([r["stages"].get(st, 0.0) for r in runs[k]]) for st in stages} for k in keys}
        totals = {k: med_of([r["total"] for r in runs[k]]) for k in keys}
        med = totals[default]
        cols = [f"median warm, {k} torch thread{'s' if k != '1' else ''}" + (" (default)" if k == default else "")
                for k in keys]
        t = sec.table(
            f"Warm runs in one fresh process after one cold call: median of {len(runs[default])} per setting, "
            f"settings interleaved. Stage by stage: animate(), then Animation.vertices (head), .frames (render all), "
            f"save('.mp4') of those frames (video); {warm['num_frames']} frames {warm['frame_shape'][1]}x"
            f"{warm['frame_shape'][2]}, renderer {warm['renderer']}. 'first call' = the first "
            f"animate+render+encode after imports (imports took {fmt_s(warm['import'])}), default threads. "
            "Stage medians are taken separately, so they need not add up to the total.",
            ["stage", *cols, "share (default)", "first call"])
        for st in stages:
            t.rows.append([st, *(fmt_s(meds[k][st]) for k in keys), f"{100 * meds[default][st] / med:.0f} %",
                           fmt_s(warm["first_stages"].get(st))])
        t.rows.append(["**total** (stages one after another)", *(fmt_s(totals[k]) for k in keys), "100 %",
                       fmt_s(warm["first_total"])])
        stream = med_of(warm["stream_runs"])
        ref = med_of(warm["ref_runs"])
        ratios = sorted(a / b for a, b in zip(warm["stream_runs"], warm["ref_runs"]))
        ratio = med_of(ratios)
        t.rows.append(["**total, streaming** `animate()` + `save('.mp4')` (render while encoding; the API/CLI path)",
                       fmt_s(stream), *([""] * (len(keys) - 1)), "", ""])
        t.rows.append(["reference: imageio `mimwrite(..., codec='libx264')` of the same frames, after each streaming run",
                       fmt_s(ref), *([""] * (len(keys) - 1)), "", ""])
        fresh_ratios = sorted(a / b for a, b in zip(warm.get("fresh_runs") or [], warm.get("fresh_ref_runs") or []))
        if fresh_ratios:
            t.rows.append(["**total, streaming, a photo not seen before** (detection, fit and photo textures made "
                           f"again, not read from the memos): {med_of(fresh_ratios):.2f}× its reference encode",
                           fmt_s(med_of(warm["fresh_runs"])), *([""] * (len(keys) - 1)), "", ""])
        met = ratio <= GOAL_WARM_RATIO
        top = sorted(stages, key=lambda st: -meds[default][st])[:3]
        note = (f"Median of {len(ratios)} per-round ratios (streaming clip / reference encode right after it; "
                f"medians {fmt_s(stream)} / {fmt_s(ref)}). Each warm clip animates the same photo, whose "
                "MediaPipe detection, fit and photo-look textures come from the content-keyed memos "
                "(flame_transit._memo), as for a stimulus set or batch of one face"
                + (f"; a photo not seen before: {med_of(fresh_ratios):.2f}× (rounds {fresh_ratios[0]:.2f}–"
                   f"{fresh_ratios[-1]:.2f}×)" if fresh_ratios else "") + ". Largest stages: "
                + ", ".join(f"{st} {fmt_s(meds[default][st])}" for st in top) + ".")
        others = [k for k in keys if k != default]
        for k in others:
            note += f" With {k} torch thread(s), stage by stage: {fmt_s(totals[k])}."
        if not met:
            ev = _profile_evidence(warm.get("profile", "") + "\n" + warm.get("profile_own", ""))
            if ev:
                note += " In the profiled warm run: " + "; ".join(ev) + "."
            note += " See the cProfile of one warm run below."
        sec.goals.append(Goal(WARM_GOAL, f"≤ {GOAL_WARM_RATIO:g}×",
                              f"{ratio:.2f}× (rounds {min(ratios):.2f}–{max(ratios):.2f}×; {fmt_s(stream)} vs {fmt_s(ref)})",
                              met, note))
        scale = warm.get("scale_runs") or {}
        small, big = scale.get(str(SIZE)) or [], scale.get(str(SCALE_SIZE)) or []
        if small and big:
            growth = sorted(b / a for a, b in zip(small, big))
            g = med_of(growth)
            st = sec.table(f"Render only (`Animation.frames`, photo look, {warm['num_frames']} frames) at {SIZE}² and "
                           f"{SCALE_SIZE}², interleaved: medians of {len(small)} rounds.",
                           [f"{SIZE}²", f"{SCALE_SIZE}²", "growth (median of per-round ratios)", "pixel ratio"])
            st.rows.append([fmt_s(med_of(small)), fmt_s(med_of(big)), f"{g:.2f}×", f"{(SCALE_SIZE / SIZE) ** 2:.0f}×"])
            sec.goals.append(Goal(f"photo look at {SCALE_SIZE}²: render time grows no faster than the pixel count",
                                  f"≤ {GOAL_SCALE:g}× the {SIZE}² time", f"{g:.2f}× ({fmt_s(med_of(big))} vs "
                                  f"{fmt_s(med_of(small))})", g <= GOAL_SCALE,
                                  "Per-frame work that does not depend on the size (scene building, draw calls, "
                                  "the mouth rig) keeps the growth under the pixel ratio."))
        mem = sec.table("Memory (5.): peak resident set size of the end-to-end subprocess "
                        "(resource.getrusage(RUSAGE_SELF).ru_maxrss): imports, models, one cold and "
                        f"{sum(len(v) for v in runs.values()) + len(warm['stream_runs']) + len(warm.get('fresh_runs') or [])} "
                        "warm clips, each holding its 60 frames "
                        "(60x512x512x3 B = 45 MiB), one clip alive at a time.",
                        ["process", "peak RSS"])
        mem.rows.append(["end-to-end worker, resident after imports", f"{warm['rss_after_import_mb']:.0f} MiB"])
        for step, mb in (warm.get("rss_steps_mb") or {}).items():
            mem.rows.append([f"first clip, resident {step}", f"{mb:.0f} MiB"])
        mem.rows.append(["end-to-end worker, peak", f"{warm['peak_rss_mb']:.0f} MiB"])
        if warm.get("profile"):
            sec.profiles.append(("cProfile of one warm end-to-end run, default threads (top by cumulative time)",
                                 _short(warm["profile"])))
            sec.profiles.append(("same run, top by own time", _short(warm.get("profile_own", ""))))
        sec.data["warm"] = {k: v for k, v in warm.items() if k != "profile"}

    _gpu_render(sec, cfg)
    if not quick:
        tmpdir = Path(tempfile.mkdtemp(prefix="ft_cli_"))
        try:
            out = tmpdir / "cli.mp4"
            argv = _cli_args(out, SIZE) + (["--model", model] if model else [])
            cmd = _cli_cmd(argv)
            bare = [sys.executable, "-c", "import torch, mediapipe"]
            # torch's and mediapipe's bytecode was compiled when pip installed them; compile the
            # checkout's too (pip does it for an installed wheel), else a machine that sets
            # PYTHONDONTWRITEBYTECODE recompiles every module of ours at every start
            compileall.compile_dir(str(REPO / "flame_transit"), quiet=1)
            walls, bare_walls = [], []
            for r in range(3):  # the CLI and the bare-import process interleaved, order alternating
                for kind in (("cli", "bare") if r % 2 == 0 else ("bare", "cli")):
                    if kind == "bare":
                        t0 = time.perf_counter()
                        proc = subprocess.run(bare, cwd=REPO, capture_output=True, text=True, timeout=600)
                        bare_walls.append(time.perf_counter() - t0)
                        if proc.returncode != 0:
                            raise RuntimeError(f"bare import failed: {proc.stderr.strip()[-400:]}")
                        continue
                    if out.exists():
                        out.unlink()
                    t0 = time.perf_counter()
                    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600,
                                          env=dict(os.environ, PYTHONPATH=str(REPO)))
                    wall = time.perf_counter() - t0
                    if proc.returncode != 0 or not out.exists():
                        raise RuntimeError(f"rc {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-800:]}")
                    walls.append(wall)
            cold_ratios = sorted(a / b for a, b in zip(walls, bare_walls))
            cold = cold_ratios[len(cold_ratios) // 2]
            sec.goals.append(Goal("cold CLI `flame-transit render` (start → exit, mp4 written) vs a bare "
                                  "`python -c \"import torch, mediapipe\"` process", f"≤ {GOAL_COLD_RATIO:g}×",
                                  f"{cold:.2f}× (CLI {', '.join(fmt_s(w) for w in walls)}; bare "
                                  f"{', '.join(fmt_s(w) for w in bare_walls)})", cold <= GOAL_COLD_RATIO,
                                  "Median of per-round ratios, the two processes interleaved; file-system caches "
                                  "warm after the first run. The CLI renders the README clip's length at "
                                  f"{SIZE}² (about 77 frames)."))
            out.unlink(missing_ok=True)
            t0 = time.perf_counter()
            timed = run_json_subprocess(_CLI_TIMED, timeout=600, args=[json.dumps(argv)])
            wall = time.perf_counter() - t0
            inproc = timed["import_cli"] + timed["main"]
            tl = sec.table("Cold CLI timeline (same command through a timing wrapper, one run).",
                           ["part", "time"])
            tl.rows.extend([
                ["import flame_transit.cli (light: heavy imports are lazy)", fmt_s(timed["import_cli"])],
                ["main(): lazy imports + encode + transit + head + render + mp4", fmt_s(timed["main"])],
                ["interpreter start-up + teardown (wall − in-process)", fmt_s(wall - inproc)],
                ["wall", fmt_s(wall)],
            ])
            out.unlink(missing_ok=True)
            rows, total_imp = _importtime(argv)
            t = sec.table(f"`python -X importtime` of the same CLI run: top-level imports by cumulative time "
                          f"(sum of top-level imports {fmt_s(total_imp)}).", ["module", "cumulative", "self"])
            for name, cum, self_t in rows[:12]:
                t.rows.append([name, fmt_s(cum), fmt_s(self_t)])
            out.unlink(missing_ok=True)
            prof = run_json_subprocess(_CLI_PROFILE, timeout=600, args=[json.dumps(argv)])
            sec.profiles.append((f"cProfile of the cold CLI run in-process (imports included; {fmt_s(prof['wall'])}), "
                                 "top by cumulative time", _short(prof["profile"])))
            sec.data["cli"] = {"walls": walls, "bare_walls": bare_walls, "imports": rows[:20]}
        except Exception as exc:
            sec.notes.append(f"cold CLI run failed: {type(exc).__name__}: {exc}")
            sec.goals.append(Goal("cold CLI `flame-transit render` vs a bare `import torch, mediapipe` process",
                                  f"≤ {GOAL_COLD_RATIO:g}×", "failed", None, str(exc)[-600:]))
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)
    else:
        sec.notes.append("--quick: cold CLI run, importtime and its profile skipped.")
    sec.seconds = time.perf_counter() - t_start
    return sec
