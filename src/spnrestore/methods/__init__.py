"""Residual methods: the registry (:mod:`.registry`) and its built-ins, one module each.

* ``plain``: the standard residual (:mod:`.plain`);
* ``li2010``: Li's enhanced SPN (:mod:`.li2010`); ``phase``: Kang et al.'s phase-only whitening (:mod:`.phase`);
* ``shipped`` and ``drive``: restoration models (:mod:`.models`); a checkpoint file given by path;
* ``calibrated``: per fingerprint and quality, the method its calibration chose (:mod:`.calibration`);
* ``original``: the uncompressed development's residual, the upper bound (:mod:`.original`).

Adding a method is one module that calls :func:`register` plus its test (docs/methods.md): every module of
this package is imported here, the built-ins first in the order of the tables, any other after them.
"""

import importlib as _importlib
import pkgutil as _pkgutil

from . import plain  # noqa: F401  (registration order is the order of every table)
from . import li2010  # noqa: F401
from . import phase  # noqa: F401
from . import models  # noqa: F401
from . import calibration  # noqa: F401
from . import original  # noqa: F401
for _module in _pkgutil.iter_modules(__path__):  # a module added to the package registers its method
    _importlib.import_module(f"{__name__}.{_module.name}")

from .registry import (CALIBRATED, COMPUTED, MODEL, ORIGINAL, Method, MethodContext, checkpoint_method,
                       compute_residual, get_method, method_order, register, registered)

#: The names of the methods that every table treats by their role: the baseline of every gain, the upper
#: bound, and the per-camera choice.
PLAIN_NAME = plain.PLAIN.name
ORIGINAL_NAME = original.ORIGINAL_METHOD.name
CALIBRATED_NAME = calibration.CALIBRATED_METHOD.name

__all__ = ["CALIBRATED", "COMPUTED", "MODEL", "ORIGINAL", "Method", "MethodContext", "checkpoint_method",
           "compute_residual", "get_method", "method_order", "register", "registered", "PLAIN_NAME",
           "ORIGINAL_NAME", "CALIBRATED_NAME"]
