"""ONNX export with compact weight encodings (CSR, BSR, packed ternary / binary, int8).

Public API for the export stage: ``export_onnx`` (-> ``ExportResult``), ``read_layouts``,
``read_preprocess``, ``read_compressed_weights``, ``densify``, ``OnnxFormatError``.
"""

from deploy.onnx.densify import densify
from deploy.onnx.errors import OnnxFormatError
from deploy.onnx.export import ExportResult, export_onnx
from deploy.onnx.metadata import read_layouts, read_preprocess
from deploy.onnx.reader import read_compressed_weights
from deploy.onnx.sizes import SizeTable, format_markdown

__all__ = [
    "ExportResult", "OnnxFormatError", "SizeTable", "densify", "export_onnx", "format_markdown",
    "read_compressed_weights", "read_layouts", "read_preprocess",
]
