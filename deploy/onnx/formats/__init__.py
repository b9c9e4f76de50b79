"""The weight formats of the ONNX export: one file each, one explicit list.

``FORMATS`` is in ``"auto"`` order (on equal bytes the earlier format wins). Everything that needs a
format looks it up here: the encoder (:mod:`deploy.onnx.encodings`), the choice per model
(:mod:`deploy.onnx.selection`), the graph rewrite, the reader and the export stage's ``--encoding``
choices. Add a format with one file holding its ``FORMAT = WeightFormat(...)`` and one entry below
(docs/adding-a-weight-format.md).
"""

from __future__ import annotations

from deploy.onnx.errors import OnnxFormatError
from deploy.onnx.formats import binary, bsr, csr, delta, dense, int8, ternary, ternary_bsr, ternary_csr, ternary_delta
from deploy.onnx.formats.record import DOMAIN, WeightFormat

FORMATS: tuple[WeightFormat, ...] = (
    dense.FORMAT,
    int8.FORMAT,
    csr.FORMAT,
    bsr.FORMAT,
    delta.FORMAT,
    ternary.FORMAT,
    binary.FORMAT,
    ternary_csr.FORMAT,
    ternary_bsr.FORMAT,
    ternary_delta.FORMAT,
)

__all__ = ["DOMAIN", "FORMATS", "WeightFormat", "encoding_names", "format_names", "format_rank", "get_format"]


def format_names() -> tuple[str, ...]:
    """Names of all formats, in ``"auto"`` order."""
    return tuple(fmt.name for fmt in FORMATS)


def get_format(name: str) -> WeightFormat:
    """The format called ``name``.

    Raises:
        OnnxFormatError: no such format.
    """
    for fmt in FORMATS:
        if fmt.name == name:
            return fmt
    raise OnnxFormatError(f"unknown weight format {name!r}; allowed: {', '.join(format_names())}")


def format_rank(name: str) -> int:
    """Position of ``name`` in ``FORMATS`` (the tie-break between equally small encodings)."""
    return format_names().index(name)


def encoding_names() -> tuple[str, ...]:
    """The ``--encoding`` values: ``"auto"`` then every format family once, in list order."""
    families = dict.fromkeys(fmt.family for fmt in FORMATS)
    return ("auto", *families)
