"""Training pairs for the restoration model: split, patch selection and shards (numpy only, no torch)."""

from .patches import PatchRule, grid_offsets, select_patches
from .shards import build_shards, build_split, list_shards, manifest_sha256, open_shard, read_manifest, write_manifest
from .split import assign_split, split_images

__all__ = [
    "PatchRule", "assign_split", "build_shards", "build_split", "grid_offsets", "list_shards",
    "manifest_sha256", "open_shard", "read_manifest", "select_patches", "split_images", "write_manifest",
]
