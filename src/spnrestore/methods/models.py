"""Restoration models as methods: ``shipped`` (the model packaged with spnrestore) and ``drive`` (the model
the drive trained, or the one it reuses with ``model.checkpoint``); a checkpoint file given by path is a
method of the same kind (:func:`.registry.checkpoint_method`). Torch is imported only when one computes."""

from .registry import MODEL, Method, register


def model_compute(checkpoint: str):
    """The ``compute`` of a model method: the whole-image pass of the model of ``checkpoint`` (``shipped``,
    ``drive`` or a path), loaded once per :class:`.registry.MethodContext`."""

    def compute(rgb, plain, quality, context):
        from ..model.inference import restore_residual

        return restore_residual(context.restorer(checkpoint), rgb, plain, quality)

    return compute


SHIPPED = register(Method("shipped", "the restorer shipped with spnrestore (pretrained on synthetic sensors)",
                          MODEL, model_compute("shipped"), "shipped", "docs/model.md"))
DRIVE = register(Method("drive", "the restorer this drive trained (or reuses: model.checkpoint)", MODEL,
                        model_compute("drive"), "drive", "docs/model.md"))
