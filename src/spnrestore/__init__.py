"""spnrestore: sensor pattern noise restoration for compressed JPEGs.

Importing the package is cheap: it never imports torch. The training and
restoration code (``spnrestore.model``) import torch
themselves when they are used.

Its modules log their messages (``logging``, under the ``spnrestore`` logger) and print nothing: the
program running them chooses where the lines go (:mod:`spnrestore.log_setup`).
"""

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
