"""Installs the MediaPipe replay (``mediapipe_replay.py``) in every Python process started with
this folder on ``PYTHONPATH`` and ``FLAME_TRANSIT_REPLAY_DETECTIONS`` set (the GPU machine's
benchmark run, ``run_gpu.sh``); does nothing otherwise. With this folder first on the path it
stands in for any other ``sitecustomize`` module, and with the variable set every Python
start imports flame_transit's landmark module: for benchmark machines only."""

import os

if os.environ.get("FLAME_TRANSIT_REPLAY_DETECTIONS"):
    import mediapipe_replay

    mediapipe_replay.install(os.environ["FLAME_TRANSIT_REPLAY_DETECTIONS"])
