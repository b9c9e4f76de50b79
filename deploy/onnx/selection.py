"""Pick one format per weight so the whole model is smallest, decode functions included.

Each format with a decode function (not ``dense``, nor ``int8``: ``DequantizeLinear`` is a
standard op) adds its decode function to the model once, about 0.9-2.5 kB. For a set ``S`` of
allowed formats the model costs ``sum_w min_{f in S} bytes(w, f) + sum_{f in S} function_bytes(f)``;
every ``S`` of the candidate formats is tried (ten formats: at most 1023 sets).
"""

from __future__ import annotations

from itertools import combinations

from deploy.onnx.encodings import WeightEncoding
from deploy.onnx.errors import OnnxFormatError
from deploy.onnx.formats import format_rank, get_format

NODE_BYTES = 64  # rough cost of one decode node plus array names, per encoded array


def _weight_cost(encoding: WeightEncoding) -> int:
    extra = 0 if get_format(encoding.format).in_place else NODE_BYTES * len(encoding.arrays)
    return encoding.stored_bytes + extra


def _total(candidates: list[dict[str, WeightEncoding]], formats: set[str], function_bytes: dict[str, int]):
    chosen = []
    for options in candidates:
        allowed = [enc for fmt, enc in options.items() if fmt in formats]
        if not allowed:
            return None, None
        chosen.append(min(allowed, key=lambda enc: (_weight_cost(enc), format_rank(enc.format))))
    used = {enc.format for enc in chosen}
    return sum(map(_weight_cost, chosen)) + sum(function_bytes.get(f, 0) for f in used), chosen


def select_encodings(candidates: list[dict[str, WeightEncoding]], *, opset: int) -> list[WeightEncoding]:
    """One encoding per weight minimising the model's estimated bytes.

    Args:
        candidates: per weight, its exact encodings keyed by format (``encode_candidates``).
        opset: default-domain opset of the model (decode functions are built for it).

    Raises:
        OnnxFormatError: when a weight has no candidate.
    """
    if any(not options for options in candidates):
        raise OnnxFormatError("every weight needs at least one candidate encoding")
    formats = sorted({fmt for options in candidates for fmt in options}, key=format_rank)
    records = {f: get_format(f) for f in formats}
    function_bytes = {f: r.decode_function(opset=opset).ByteSize() for f, r in records.items() if r.decode_body is not None}
    best_cost, best = None, None
    for size in range(1, len(formats) + 1):
        for subset in combinations(formats, size):
            cost, chosen = _total(candidates, set(subset), function_bytes)
            if cost is not None and (best_cost is None or cost < best_cost):
                best_cost, best = cost, chosen
    return best
