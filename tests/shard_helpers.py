"""Build a whole data set of shards in tests as the workflow does: each split with build_split, then the
manifests gathered (the workflow runs one build_split per split and camera, then gather_manifests)."""

from __future__ import annotations

from spnrestore.dataset import build_split, gather_manifests
from spnrestore.dataset.split import SPLITS


def build_dataset(examples, fingerprints, out_dir, target="camera_term", patch=128, stride=None, shard_size=256,
                  rule=None, max_patches_per_image=None, splits=None, *, sigma=None):
    """Every split of ``examples`` (or only ``splits``; the known splits first, in their order) with
    :func:`build_split`, then :func:`gather_manifests`; returns the combined manifest."""
    if splits is None:
        found = set(examples["split"].astype(str))
        splits = sorted(found, key=lambda s: (SPLITS.index(s) if s in SPLITS else len(SPLITS), s))
    for split in splits:
        build_split(examples, fingerprints, out_dir, split, target, patch, stride, shard_size, rule,
                    max_patches_per_image, sigma=sigma)
    return gather_manifests(out_dir, splits)
