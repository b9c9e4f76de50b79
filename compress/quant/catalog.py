"""Imports every quantization-method module so that each registers itself in ``QUANT_METHODS``."""

from compress.quant import binary_relax, straight_through_methods, ttq_method  # noqa: F401
