"""spnrestore: sensor pattern noise restoration for compressed JPEGs.

Importing the package is cheap: it never imports torch. The training and
restoration code (``spnrestore.model``) import torch
themselves when they are used.
"""

__version__ = "0.1.0"
