"""Synthetic demo drive: camera models written as real DNG files, with ground truth.

``make_demo_drive(root)`` writes ``root/Images/Original/<Camera_Model>/*.DNG`` (the
input layout of the pipeline) plus each camera's true PRNU factor under
``root/truth``; see :mod:`spnrestore.demo.drive` for the layout. ``make_developed_drive(root)``
writes the same cameras' shots as developed originals (camera JPEG, PNG, 16-bit TIFF, flat fields)
with no RAW file (:mod:`spnrestore.demo.developed_drive`). Never imports torch.
"""

from spnrestore.demo.developed_drive import make_developed_drive
from spnrestore.demo.drive import (FORMAT_VERSION, MARKER, demo_parameters, ensure_demo_drive, is_current,
                                   make_demo_drive, read_marker)

__all__ = ["FORMAT_VERSION", "MARKER", "demo_parameters", "ensure_demo_drive", "is_current", "make_demo_drive",
           "make_developed_drive", "read_marker"]
