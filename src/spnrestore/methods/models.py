"""Restoration models as methods: ``shipped`` (the model packaged with spnrestore: fine-tuned on real cameras),
``synthetic`` (its base, pretrained on synthetic sensors only: the model shipped until 2026-12-07) and
``drive`` (the model the drive trained, or the one it reuses with ``model.checkpoint``); a checkpoint file
given by path is a method of the same kind (:func:`.registry.checkpoint_method`). ``fused`` sums the plain residual and the
shipped model's, each at unit variance. Torch is imported only when one computes."""

import numpy as np

from .registry import MODEL, Method, in_plain_units, register, residual_std


def model_compute(checkpoint: str):
    """The ``compute`` of a model method: the whole-image pass of the model of ``checkpoint`` (``shipped``,
    ``drive`` or a path), loaded once per :class:`.registry.MethodContext`; the last image's result is kept
    in the context, so that a fused method of the same image does not run the model again."""

    def compute(rgb, plain, quality, context):
        return context.model_residual(checkpoint, rgb, plain, quality)

    return compute


def fused_compute(checkpoint: str):
    """The ``compute`` of a fused method: plain / std(plain) + model / std(model), in plain's units.

    Two estimates of the same PRNU term whose noises are partly independent: where the model's residual is
    as good as plain's the sum keeps both (up to sqrt(2) in SNR when the noises are independent), and where
    the model misreads a camera the sum keeps plain's evidence, which the model's residual alone loses. The
    equal weights are fixed, not fitted to any camera."""

    def compute(rgb, plain, quality, context):
        restored = context.model_residual(checkpoint, rgb, plain, quality)
        s_plain, s_model = residual_std(plain), residual_std(restored)
        if not all(s > 0.0 and np.isfinite(s) for s in (s_plain, s_model)):
            return plain
        total = plain * np.float32(1.0 / s_plain) + restored * np.float32(1.0 / s_model)
        return in_plain_units(total, s_plain)

    return compute


SHIPPED = register(Method("shipped", "the restorer shipped with spnrestore (synthetic sensors, then real cameras)",
                          MODEL, model_compute("shipped"), "shipped", "docs/model.md"))
FUSED = register(Method("fused", "the plain residual and the shipped restorer's, each at unit variance, summed",
                        MODEL, fused_compute("shipped"), "shipped", "docs/methods.md"))
SYNTHETIC = register(Method("synthetic", "the shipped restorer's base, pretrained on synthetic sensors only", MODEL,
                            model_compute("synthetic"), "synthetic", "docs/model.md"))
DRIVE = register(Method("drive", "the restorer this drive trained (or reuses: model.checkpoint)", MODEL,
                        model_compute("drive"), "drive", "docs/model.md"))
