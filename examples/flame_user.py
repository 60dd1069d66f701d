#!/usr/bin/env python
"""For FLAME users: your own FLAME model (and optionally DECA) with flame_transit.

The one-liner (nothing but your FLAME file; the first call finds MediaPipe's landmarks on the
model and fits the AU -> FLAME map, a few seconds, then both are cached)::

    from flame_transit import animate
    anim = animate("photo.jpg", "from disgust to happiness", head="generic_model.pkl")
    anim.params.expression   # (T, 100) FLAME expression coefficients (DECA's 50 first), pose (T, 15)
    anim.save("clip.mp4"); anim.save("clip.npz", layout="deca")

What this script shows, step by step:

1. ``load_head("generic_model.pkl")`` -- FLAME 2020 / 2023 / 2023 Open pickles load **without
   chumpy**; optionally with your own MediaPipe landmark embedding (``--landmark-embedding``;
   without it the landmarks are found on the model itself);
2. the forward pass: identity ``shape (300,)``, ``expression (100,)`` and ``pose`` as FLAME's 15
   values (global, neck, jaw, left eye, right eye) or DECA's 6 (global, jaw), any batch shape;
3. with ``--deca deca_model.tar``: DECA's encoder on a photo gives the identity (needs torchvision:
   ``pip install "flame_transit[deca]"``);
4. FLAME-space directions of the FACS action units (``flame_transit.data.flame_space.fit_au_basis``),
   then an emotion prototype (or, with ``--instruction``, the bundled instruction model's
   output) turned into FLAME expression coefficients + jaw pose;
5. an animation of the FLAME mesh (neutral -> each expression) exported as ``.npz``, ``.glb`` and an
   ``.obj`` folder; the clip keeps its AU codes (``Anchors(au=...)``), so it also has ARKit curves
   (``flame_curves.csv``) and its ``.glb`` has one named shape per AU (docs/ARKIT.md).

FLAME cannot be shipped or downloaded by this library (licence, account wall); see
``assets/README.md``. To try the script without it, ``--demo`` writes a FLAME-format file with
FLAME's keys and array shapes but RANDOM values (a shapeless blob, not a face) and a random
"MediaPipe embedding", and runs everything on them -- a dry run of the code path only.

Run::

    python examples/flame_user.py --demo                                   # dry run, random model
    python examples/flame_user.py --flame ~/flame/generic_model.pkl
    python examples/flame_user.py --flame generic_model.pkl --landmark-embedding mediapipe_landmark_embedding.npz \\
        --emotions sadness,surprise
    python examples/flame_user.py --flame generic_model.pkl --landmark-embedding emb.npz \\
        --instruction "from slightly sad to very happy"
    python examples/flame_user.py --flame generic_model.pkl --deca deca_model.tar --image photo.jpg
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ASSETS_README = HERE.parent / "assets" / "README.md"

WHERE_TO_GET_FLAME = f"""\
No FLAME model given (--flame PATH).
  FLAME 2020 generic_model.pkl, FLAME 2023 flame2023.pkl or FLAME 2023 Open flame2023_Open.pkl:
  https://flame.is.tue.mpg.de (free account; licence terms on the site). Landmark embeddings
  come from the FLAME / DECA / MICA project pages, DECA's deca_model.tar from
  https://deca.is.tue.mpg.de. Details and licences: {ASSETS_README}
  Then: python {Path(__file__).name} --flame /path/to/generic_model.pkl [--landmark-embedding EMB]
  Or a dry run on a random FLAME-format file: python {Path(__file__).name} --demo
"""


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--flame", help="FLAME model: generic_model.pkl, flame2023*.pkl, or an .npz with the same keys")
    p.add_argument("--landmark-embedding", help="your own MediaPipe landmark embedding (lmk_face_idx, lmk_b_coords, "
                   "landmark_indices); default: found on the model automatically")
    p.add_argument("--deca", help="DECA's deca_model.tar (needs torchvision): encode --image for the identity")
    p.add_argument("--image", default=str(HERE / "face.jpg"), help="photo for --deca")
    p.add_argument("--emotions", default="disgust,happiness", help="comma-separated emotion prototypes to animate")
    p.add_argument("--instruction", help="instead of --emotions: an instruction, through the bundled (open-head) "
                   "model and the AU -> FLAME map")
    p.add_argument("--demo", action="store_true", help="without --flame: write and use a RANDOM FLAME-format model")
    p.add_argument("--out", default="out/flame_user", help="output folder")
    p.add_argument("--fps", type=float, default=24.0)
    p.add_argument("--duration", type=float, default=1.0, help="seconds per transition")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


# -- dry-run files: FLAME's layout, random numbers ---------------------------------------------

def write_random_flame(folder: Path, seed: int = 0):
    """Write ``random_flame_model.pkl`` (FLAME 2020's keys and shapes, RANDOM values: not a face)
    and ``random_mediapipe_embedding.npz`` (105 random points called MediaPipe landmarks).

    Real FLAME pickles hold chumpy arrays; flame_transit reads those without chumpy, and plain
    numpy arrays like these just as well.
    """
    import scipy.sparse

    rng = np.random.default_rng(seed)
    V, F, S, E = 5023, 9976, 300, 100  # FLAME's vertices, triangles, shape and expression sizes
    # vertices on a head-sized ellipsoid (metres), triangles between random vertices
    d = rng.normal(size=(V, 3))
    v_template = 0.5 * np.array([0.16, 0.22, 0.2]) * d / np.linalg.norm(d, axis=1, keepdims=True)
    faces = np.stack([rng.choice(V, size=3, replace=False) for _ in range(F)]).astype(np.uint32)
    j_reg = np.abs(rng.normal(size=(5, V))) * (rng.random((5, V)) < 0.01)  # joints: root, neck, jaw, eyes
    j_reg /= j_reg.sum(axis=1, keepdims=True)
    weights = rng.random((V, 5)) ** 4
    model = {
        "v_template": v_template,                                         # (5023, 3)
        "f": faces,                                                       # (9976, 3)
        "shapedirs": rng.normal(scale=1e-3, size=(V, 3, S + E)),          # 300 shape + 100 expression
        "posedirs": rng.normal(scale=1e-4, size=(V, 3, 36)),              # 4 joints x 9 rotation entries
        "J_regressor": scipy.sparse.csc_matrix(j_reg),                    # (5, 5023), sparse like FLAME's
        "weights": weights / weights.sum(axis=1, keepdims=True),          # (5023, 5) skinning weights
        "kintree_table": np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }
    folder.mkdir(parents=True, exist_ok=True)
    model_path = folder / "random_flame_model.pkl"
    with open(model_path, "wb") as fh:
        pickle.dump(model, fh, protocol=2)
    L = 105
    emb_path = folder / "random_mediapipe_embedding.npz"
    np.savez(emb_path, lmk_face_idx=rng.choice(F, size=L, replace=False),      # triangle per landmark
             lmk_b_coords=rng.dirichlet(np.ones(3), size=L),                    # barycentric weights
             landmark_indices=np.sort(rng.choice(468, size=L, replace=False)))  # which MediaPipe point
    return model_path, emb_path


# -- FLAME expression coefficients for the anchors ---------------------------------------------

def parse_emotions(text):
    """``"happy, Disgust"`` -> ``["happiness", "disgust"]`` (raises InputError on unknown names)."""
    from flame_transit.data.dataset import normalize_label
    from flame_transit.errors import InputError

    labels = [normalize_label(e.strip()) for e in text.split(",") if e.strip()]
    if not labels:
        raise InputError("--emotions is empty; name one or more, e.g. 'disgust,happiness'")
    return labels


def au_codes(basis, aus, au26):
    """The anchors' AU codes in flame_transit's AU space ``(K, 23)`` (``arkit.AU_NAMES``): kept on
    the clip, they give a FLAME clip ARKit curves and a .glb with one shape per AU."""
    from flame_transit.arkit import AU_NAMES

    codes = np.zeros((len(aus), len(AU_NAMES)))
    for j, name in enumerate(basis.au_names):
        codes[:, AU_NAMES.index(name)] = aus[:, j]
    codes[:, AU_NAMES.index("AU26")] = au26
    return codes


def anchors_from_emotions(basis, labels):
    """Emotion prototypes (FACS AU intensities, EMFACS) -> FLAME ``(K, E)`` expression + ``(K, 3)``
    jaw, and the prototypes' AU codes."""
    from flame_transit.expressions import PROTOTYPES as EMOTION_PROTOTYPES

    aus = np.zeros((len(labels), len(basis.au_names)))
    au26 = np.zeros(len(labels))  # AU26 (jaw drop) is a jaw rotation, kept apart
    for k, label in enumerate(labels):
        for au, value in EMOTION_PROTOTYPES[label].items():
            if au == "AU26":
                au26[k] = value
            else:
                aus[k, basis.au_names.index(au)] = value
        print(f"  {label:9s} prototype: {EMOTION_PROTOTYPES[label] or '(no AUs)'}")
    expression, jaw = basis.apply(aus, au26)  # (K, E) FLAME coefficients, (K, 3) jaw axis-angle
    return expression, jaw, labels, au_codes(basis, aus, au26)


def anchors_from_instruction(basis, instruction, seed):
    """The bundled instruction model (trained on the open head, whose expression coordinates
    are AUs) -> AU anchors -> FLAME through the same AU map."""
    from flame_transit.head import load_head
    from flame_transit.transit import generate_anchors

    au_anchors = generate_anchors(instruction, seed=seed)  # on the open head: (K, 22) AUs, (K, 3) jaw
    names = list(load_head().expression_names)
    aus = au_anchors.expression.numpy()[:, [names.index(a) for a in basis.au_names]]
    au26 = au_anchors.jaw_pose.numpy()[:, 0] / basis.jaw_per_au26[0]  # jaw opening in AU26 units
    expression, jaw = basis.apply(aus, au26)
    return expression, jaw, list(au_anchors.labels), au_codes(basis, aus, au26)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.flame and not args.demo:
        print(WHERE_TO_GET_FLAME)
        return 0
    from flame_transit.errors import FlameTransitError

    try:
        return run(args)
    except FlameTransitError as exc:  # bad input or asset: the message says what to do
        print(f"error: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    emotions = parse_emotions(args.emotions)  # check the names before any long work
    if not args.flame:  # --demo
        args.flame, emb = write_random_flame(out / "demo_random_model", seed=args.seed)
        args.landmark_embedding = args.landmark_embedding or emb
        print(f"DRY RUN: wrote a FLAME-format model with RANDOM values (not a face): {args.flame}\n"
              f"         and a random landmark embedding: {emb}")

    import torch

    from flame_transit.export import compute_vertices, save_arkit_csv, save_glb, save_npz, save_obj_sequence
    from flame_transit.head import load_head
    from flame_transit.params import FaceParams
    from flame_transit.trajectory import Anchors, build_trajectory

    # 1. load: no chumpy needed; the embedding adds landmarks (out.landmarks) to the forward
    head = load_head(args.flame, landmark_embedding=args.landmark_embedding)
    S, E = head.num_shape, head.num_expression
    print(f"\n{head.name}: {head.num_vertices} vertices, {len(head.faces)} triangles, "
          f"{S} shape + {E} expression coefficients, {head.num_joints} joints")

    # 2. forward. Coefficients are in FLAME's PCA units (about +-2 is a strong expression);
    #    pose is axis-angle in radians: [global 0:3, neck 3:6, jaw 6:9, left eye 9:12, right eye 12:15]
    g = torch.Generator().manual_seed(args.seed)
    shape = torch.randn(S, generator=g)  # some identity
    expression = torch.zeros(E)
    expression[0] = 2.0
    pose = torch.zeros(15)
    pose[6] = 0.2  # open the jaw by 0.2 rad (11 degrees) about +X
    with torch.no_grad():
        flame15 = head(shape=shape, expression=expression, pose=pose)
        deca6 = head(shape=shape[:100], expression=expression[:50], pose=torch.cat([pose[0:3], pose[6:9]]))
        batch = head(expression=torch.zeros(4, 2, E))  # any leading batch shape
    print(f"forward: vertices {tuple(flame15.vertices.shape)} (metres), joints {tuple(flame15.joints.shape)}, "
          f"landmarks {None if flame15.landmarks is None else tuple(flame15.landmarks.shape)}; "
          f"batch (4, 2, E) -> {tuple(batch.vertices.shape)}")
    # DECA's 100 shape / 50 expression are FLAME's first coefficients (the rest zero-padded) and
    # its 6-value pose is global + jaw: the same mesh as the 15-value pose with neck/eyes at zero
    same = torch.allclose(deca6.vertices, head(shape=shape[:100], expression=expression[:50], pose=pose).vertices)
    print(f"  DECA layout (100 shape, 50 expression, 6 pose) gives the same mesh as FLAME's 15-pose: {same}")

    # 3. the identity of the animation: neutral FLAME, or DECA's fit of the photo
    subject = FaceParams(shape=torch.zeros(S), expression=torch.zeros(E), pose=torch.zeros(15), head_name=head.name)
    if args.deca:
        from flame_transit.encode import DecaEncoder

        try:
            subject = DecaEncoder(args.deca, head=head)(args.image)  # FaceParams: shape (100,), exp (50,), pose (15,)
        except ImportError as exc:  # torchvision missing: the message says how to install it
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"DECA on {args.image}: shape {tuple(subject.shape.shape)}, expression "
              f"{tuple(subject.expression.shape)}, pose {tuple(subject.pose.shape)} (from DECA's 6), cam {subject.cam.tolist()}")

    # 4. anchor expressions in FLAME's coefficients, through the AU -> FLAME map. Without an
    #    embedding, MediaPipe's landmarks are found on the model first (render + MediaPipe +
    #    registration of the open head; cached per model in ~/.cache/flame_transit/heads)
    from flame_transit.data.flame_space import fit_au_basis

    basis = fit_au_basis(head)  # (E, 22) FLAME coefficients per unit action unit
    print(f"AU -> FLAME map: {basis.describe()}")
    if "landmark_embedding_quality" in head.assets.meta:
        print(f"  landmarks found on the model: {head.assets.meta['landmark_embedding']}")
    print(f"  saved to {basis.save(out / 'au_basis.npz')} (FlameAUBasis.load to reuse)")
    if args.instruction:
        expr, jaw, labels, codes = anchors_from_instruction(basis, args.instruction, args.seed)
    else:
        expr, jaw, labels, codes = anchors_from_emotions(basis, emotions)
    for k, label in enumerate(labels):
        top = [i for i in np.argsort(-np.abs(expr[k]))[:5] if abs(expr[k, i]) >= 5e-3]
        print(f"  {label:12s} jaw {np.degrees(jaw[k, 0]):5.1f} deg, largest FLAME coefficients: "
              + (", ".join(f"exp{i:03d}={expr[k, i]:+.2f}" for i in top) or "none"))

    # 5. animate neutral -> each anchor, then export the FLAME meshes
    from flame_transit.arkit import AU_NAMES

    with_aus = {} if codes is None else dict(au=np.vstack([np.zeros(len(AU_NAMES)), codes]), au_names=AU_NAMES)
    anchors = Anchors(expression=np.vstack([np.zeros(E), expr]), jaw_pose=np.vstack([np.zeros(3), jaw]),
                      labels=["neutral"] + labels, head_name=head.name, **with_aus)
    traj = build_trajectory(subject, anchors, fps=args.fps, duration=args.duration, timing="ease", hold=0.2)
    vertices = compute_vertices(head, traj.params)  # (T, 5023, 3) metres
    print(f"clip: {' -> '.join(traj.labels)}, {len(vertices)} frames at {args.fps:g} fps")
    out.mkdir(parents=True, exist_ok=True)
    common = dict(vertices=vertices, head=head)
    print(f"wrote {save_npz(out / 'flame_anim.npz', traj, instruction=args.instruction or args.emotions, **common)}")
    print(f"wrote {save_glb(out / 'flame_anim.glb', params=traj, **common)}")
    print(f"wrote {save_obj_sequence(out / 'flame_obj', params=traj, overwrite=True, **common)}/")
    if codes is not None:  # the clip kept its AU codes: ARKit curves (and one .glb shape per AU)
        print(f"wrote {save_arkit_csv(out / 'flame_curves.csv', traj, head=head)} (ARKit curves)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
