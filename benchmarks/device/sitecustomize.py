"""Installs the MediaPipe replay (``mediapipe_replay.py``) in every Python process started with
this folder on ``PYTHONPATH`` and ``FLAME_TRANSIT_REPLAY_DETECTIONS`` set (the GPU machine's
benchmark run, ``run_gpu.sh``); does nothing otherwise."""

import os

if os.environ.get("FLAME_TRANSIT_REPLAY_DETECTIONS"):
    import mediapipe_replay

    mediapipe_replay.install(os.environ["FLAME_TRANSIT_REPLAY_DETECTIONS"])
