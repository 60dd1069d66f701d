"""The parametric head layer: FLAME files and the bundled open head, one LBS forward."""

from .correspondence import LandmarkEmbedding, ensure_mediapipe_landmarks, mediapipe_embedding
from .io import FLAME_ENV_VAR, OPEN_HEAD_PATH, load_head, load_head_assets, read_flame_arrays
from .lbs import LBSOutput, lbs_forward
from .model import JOINT_NAMES, Head, HeadAssets, HeadOutput, pose6_to_pose15

__all__ = [
    "FLAME_ENV_VAR",
    "OPEN_HEAD_PATH",
    "JOINT_NAMES",
    "Head",
    "HeadAssets",
    "HeadOutput",
    "LBSOutput",
    "LandmarkEmbedding",
    "ensure_mediapipe_landmarks",
    "mediapipe_embedding",
    "lbs_forward",
    "load_head",
    "load_head_assets",
    "pose6_to_pose15",
    "read_flame_arrays",
]
