"""Training pairs for the restoration model: split, patch selection and shards (numpy only, no torch)."""

from .patches import PatchRule, grid_offsets, select_patches
from .shard_reader import (camera_folders, list_shards, manifest_sha256, open_shard, read_manifest, read_rows,
                           split_manifest)
from .shard_writer import build_split, gather_manifests
from .split import assign_split, split_images

__all__ = [
    "PatchRule", "assign_split", "build_split", "camera_folders", "gather_manifests", "grid_offsets", "list_shards",
    "manifest_sha256", "open_shard", "read_manifest", "read_rows", "select_patches", "split_images",
    "split_manifest",
]
