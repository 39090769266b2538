"""Shared fixtures: project paths, the real DNG samples, small generated drives."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "data" / "raw-samples"


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def samples() -> Path:
    """The real camera DNGs beside the project (read-only); tests skip when absent."""
    if not SAMPLES.is_dir():
        pytest.skip(f"real DNG samples not found at {SAMPLES}")
    return SAMPLES


def sha256_tree(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root``, keyed by relative path."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }
