"""Read the same rendered end frames with two perceptual judges and print how far they agree.

Renders every ordered pair of the six basic emotions ("Turn this face from {a} to {b}." by
default) on one photo in both looks, reads the first and last frame of each clip with each judge
(flame_transit.evaluation.perceptual.JUDGES: facex and fer) and prints, per look, each judge's Acc1 / Acc2 /
direction and a per-emotion table: each judge's hit rate (Acc1 per instructed emotion) and how
often the two judges' top labels are the same. Optionally writes the rows as JSON and one contact
sheet per look (6x6: row = from, column = to; last frames off the diagonal, the first frame of
"from A" on it; each judge's top label under the frame, green when it is the instructed emotion).

    python tools/judge_compare.py [--image examples/face.jpg] [--out DIR] [--judges facex,fer]
"""
import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List

import numpy as np

from flame_transit.evaluation.perceptual import BASIC_EMOTIONS, clip_end_frames, get_judge, read_clip, score_rows

ROOT = Path(__file__).resolve().parents[1]
CELL, STRIP, MARGIN = 128, 26, 84  # thumbnail, label strip under it, left/top label margin


def agreement_table(rows: Dict[str, Dict[str, List[Dict[str, Any]]]], looks: List[str]) -> str:
    """Markdown: per instructed emotion, each judge's hit rate per look and the judges' agreement."""
    judges = list(rows)
    head = ["emotion"] + [f"{j} {lk}" for lk in looks for j in judges] + [f"agree {lk}" for lk in looks]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    emotions = sorted({r["from"] for j in judges for lk in looks for r in rows[j][lk]})
    for e in emotions + ["all"]:
        cells, agree = [], []
        for lk in looks:
            # every (clip, end) where e was instructed: first frame of "from e", last frame of "to e"
            ends = [(i, end) for i, r in enumerate(rows[judges[0]][lk]) for end, key in (("first", "from"), ("last", "to"))
                    if e in ("all", r[key])]
            for j in judges:
                truth = [rows[j][lk][i]["from" if end == "first" else "to"] for i, end in ends]
                hits = [rows[j][lk][i][end] == t for (i, end), t in zip(ends, truth)]
                cells.append(f"{100 * np.mean(hits):.0f}")
            same = [len({rows[j][lk][i][end] for j in judges}) == 1 for i, end in ends]
            agree.append(f"{100 * np.mean(same):.0f}")
        lines.append(f"| {e} | " + " | ".join(cells + agree) + " |")
    return "\n".join(lines) + "\n"


def contact_sheet(frames: Dict[tuple, np.ndarray], labels: Dict[tuple, Dict[str, str]], path: Path) -> None:
    """6x6 grid, row = from, column = to; ``frames[(a, b)]`` is drawn with each judge's label."""
    from PIL import Image, ImageDraw

    n = len(BASIC_EMOTIONS)
    step = CELL + STRIP
    im = Image.new("RGB", (MARGIN + n * CELL, MARGIN // 3 + n * step), "white")
    d = ImageDraw.Draw(im)
    for i, a in enumerate(BASIC_EMOTIONS):
        d.text((4, MARGIN // 3 + i * step + CELL // 2), f"from {a}", fill=(0, 0, 0))
        d.text((MARGIN + i * CELL + 4, 8), f"to {a}", fill=(0, 0, 0))
        for k, b in enumerate(BASIC_EMOTIONS):
            key = (a, b)
            if key not in frames:
                continue
            x, y = MARGIN + k * CELL, MARGIN // 3 + i * step
            im.paste(Image.fromarray(frames[key]).resize((CELL, CELL)), (x, y))
            truth = a if a == b else b  # the diagonal holds the first frame of "from a"
            for m, (judge, lab) in enumerate(labels[key].items()):
                colour = (0, 130, 0) if lab == truth else (200, 0, 0)
                d.text((x + 2, y + CELL + 1 + 12 * m), f"{judge}: {lab}", fill=colour)
    d.text((4, 4), "row: from\ncol: to", fill=(0, 0, 0))
    im.quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)  # ~200 KB instead of ~500


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--image", default=str(ROOT / "examples" / "face.jpg"))
    ap.add_argument("--judges", default="facex,fer", help="comma-separated names from perceptual.JUDGES")
    ap.add_argument("--looks", default="photo,shaded")
    ap.add_argument("--template", default="Turn this face from {a} to {b}.")
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="folder for rows.json and sheet_<look>.png")
    args = ap.parse_args()
    looks = [lk.strip() for lk in args.looks.split(",") if lk.strip()]
    judges = {name.strip(): get_judge(name.strip()) for name in args.judges.split(",") if name.strip()}

    rows: Dict[str, Dict[str, List[Dict[str, Any]]]] = {j: {lk: [] for lk in looks} for j in judges}
    sheets: Dict[str, Dict[tuple, np.ndarray]] = {lk: {} for lk in looks}
    sheet_labels: Dict[str, Dict[tuple, Dict[str, str]]] = {lk: {} for lk in looks}
    for _, a, b, text, look, f0, f1 in clip_end_frames(args.image, looks=looks, templates=(args.template,),
                                                       seed=args.seed, size=args.size, progress=True):
        for name, judge in judges.items():
            row = read_clip(judge, a, b, f0, f1)
            row["instruction"] = text
            if hasattr(judge, "face_box"):
                row["face_box_last"] = judge.face_box
            rows[name][look].append(row)
        sheets[look][(a, b)] = f1
        sheet_labels[look][(a, b)] = {j: rows[j][look][-1]["last"] for j in judges}
        if (a, a) not in sheets[look]:
            sheets[look][(a, a)] = f0
            sheet_labels[look][(a, a)] = {j: rows[j][look][-1]["first"] for j in judges}

    for look in looks:
        for name, judge in judges.items():
            print(f"[{name}] {score_rows(rows[name][look], look, judge.labels, name)}")
            boxes = Counter(r["face_box_last"] for r in rows[name][look] if "face_box_last" in r)
            if boxes:
                print(f"[{name}] {look}: face box of the last frames: {dict(sorted(boxes.items()))}")
    print()
    print(agreement_table(rows, looks))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "rows.json").write_text(json.dumps(rows, indent=1))
        for look in looks:
            contact_sheet(sheets[look], sheet_labels[look], out / f"sheet_{look}.png")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
