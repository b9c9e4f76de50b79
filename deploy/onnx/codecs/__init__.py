"""Pure numpy weight codecs with bit-exact round trips (CSR, BSR, ternary, binary, int8)."""

from deploy.onnx.codecs.bitpack import pack_bits, packed_length, unpack_bits
from deploy.onnx.codecs.bsr import BsrArrays, decode_bsr, encode_bsr
from deploy.onnx.codecs.csr import CsrArrays, decode_csr, encode_csr
from deploy.onnx.codecs.delta import DeltaArrays, decode_delta, encode_delta
from deploy.onnx.codecs.int8 import Int8Arrays, decode_int8, encode_int8
from deploy.onnx.codecs.sparse_ternary import (
    SparseTernaryArrays,
    decode_ternary_bsr,
    decode_ternary_csr,
    decode_ternary_delta,
    encode_ternary_bsr,
    encode_ternary_csr,
    encode_ternary_delta,
)
from deploy.onnx.codecs.ternary import TernaryArrays, pack_binary, pack_ternary, unpack_binary, unpack_ternary

__all__ = [
    "BsrArrays", "CsrArrays", "DeltaArrays", "decode_delta", "encode_delta",
    "decode_ternary_delta", "encode_ternary_delta", "Int8Arrays", "SparseTernaryArrays", "TernaryArrays",
    "decode_bsr", "decode_csr", "decode_int8", "decode_ternary_bsr", "decode_ternary_csr",
    "encode_bsr", "encode_csr", "encode_int8", "encode_ternary_bsr", "encode_ternary_csr",
    "pack_binary", "pack_bits", "pack_ternary", "packed_length", "unpack_binary", "unpack_bits",
    "unpack_ternary",
]
