"""``original``: the residual of the uncompressed development (RAW developed, or the developed original as
given), scored by the rule ``develop``; the upper bound of what any method can recover from a JPEG. Present
only where the drive has an uncompressed development of the image."""

from .registry import ORIGINAL, Method, register

ORIGINAL_METHOD = register(Method("original", "the residual of the uncompressed development (upper bound)", ORIGINAL,
                                  reference="the development before JPEG compression"))
