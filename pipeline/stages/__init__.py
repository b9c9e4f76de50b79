"""The pipeline's stages; importing this package registers each of them in ``STAGES``."""

from pipeline.stages import compile, export, prune, quantize, report, train_sparse  # noqa: F401
