"""compress: sparsity-promoting training, pruning and quantization algorithms.

Pure, reusable algorithms: no file I/O, no CLI, and no imports from ``pipeline`` or ``deploy``.
"""

__version__ = "0.1.0"
