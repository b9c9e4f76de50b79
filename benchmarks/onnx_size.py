"""Size of LeNet-5 as compact ONNX: dense fp32 vs ~99% sparse ternary (random init, size only).

Usage: ``python benchmarks/onnx_size.py [--keep-ratio 0.01] [--block 4x4] [--out FILE.md]``.

The weights are randomly initialised (no training): each conv / linear weight keeps its largest
``keep_ratio`` magnitudes (per layer; with ``--block``, the blocks of the GEMM view with the largest
L1 norm) and becomes ``alpha * sign(w)`` on that support with ``alpha`` the mean kept magnitude of
the layer. Biases stay float32. This measures the storage format only; accuracy-backed numbers
come from the pipeline.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import onnx
import torch

from compress.models import create_model
from compress.types import BlockShape, SparsityLayout
from deploy.onnx import densify, export_onnx, format_markdown
from deploy.onnx.parity import onnxruntime_session
from deploy.onnx.sizes import file_breakdown


def session_seconds(model: onnx.ModelProto, *, repeats: int = 5) -> float:
    """Median seconds to create a single-threaded onnxruntime session (decode folding included)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        onnxruntime_session(model)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def block_mask(weight: torch.Tensor, *, keep_ratio: float, block: tuple[int, int]) -> torch.Tensor:
    """Mask keeping the ``keep_ratio`` fraction of ``r x c`` blocks (GEMM view) with largest L1 norm."""
    r, c = block
    matrix = weight.abs().reshape(weight.shape[0], -1)
    rows, cols = matrix.shape
    padded = torch.nn.functional.pad(matrix, (0, -cols % c, 0, -rows % r))
    norms = padded.reshape(padded.shape[0] // r, r, padded.shape[1] // c, c).sum(dim=(1, 3))
    keep = max(1, round(keep_ratio * norms.numel()))
    kept = norms >= norms.flatten().kthvalue(norms.numel() - keep + 1).values
    mask = kept.repeat_interleave(r, 0).repeat_interleave(c, 1)[:rows, :cols]
    return mask.reshape(weight.shape)


@torch.no_grad()
def sparse_ternary_(model: torch.nn.Module, *, keep_ratio: float, block=(1, 1)) -> list[SparsityLayout]:
    """Keep the top ``keep_ratio`` of each conv / linear weight (by block), then ``alpha * sign``."""
    layouts = []
    for name, module in model.named_modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            weight = module.weight
            mask = block_mask(weight, keep_ratio=keep_ratio, block=block)
            alpha = weight.abs()[mask].mean()
            weight.copy_(torch.where(mask, torch.sign(weight) * alpha, torch.zeros_like(weight)))
            pattern = "unstructured" if block == (1, 1) else "block"
            nnz = int(torch.count_nonzero(weight))
            layouts.append(SparsityLayout(f"{name}.weight", pattern, BlockShape(*block), nnz, weight.numel()))
    return layouts


def measure(*, keep_ratio: float, seed: int, block=(1, 1)) -> tuple[str, dict]:
    """Export sparse-ternary LeNet-5 and return the markdown size table and summary numbers."""
    torch.manual_seed(seed)
    model = create_model("lenet5").eval()
    layouts = sparse_ternary_(model, keep_ratio=keep_ratio, block=block)
    batch = torch.randn(8, 1, 28, 28)
    with tempfile.TemporaryDirectory() as tmp:
        result = export_onnx(model, batch, Path(tmp) / "lenet5.onnx", layouts=layouts)
        dense_again = densify(onnx.load(result.path))
        compressed = onnx.load(result.path)
    summary = {
        "max_abs_error": result.max_abs_error,
        "formats": sorted({r["format"] for r in result.layers}),
        "densified_bytes": dense_again.ByteSize(),
        "load_compressed_s": session_seconds(compressed),
        "load_dense_s": session_seconds(dense_again),
        "breakdown": file_breakdown(compressed, result.layers),
    }
    return format_markdown(result.sizes), summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep-ratio", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--block", default="1x1", help="block shape RxC on the GEMM view (default 1x1)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    block = tuple(int(v) for v in args.block.lower().split("x"))
    table, summary = measure(keep_ratio=args.keep_ratio, seed=args.seed, block=block)
    text = "\n".join([
        f"## LeNet-5, {100 * (1 - args.keep_ratio):g}% sparse ternary, blocks {args.block} (random init)",
        "",
        f"Command: `python benchmarks/onnx_size.py --keep-ratio {args.keep_ratio} --block {args.block} "
        f"--seed {args.seed}`",
        f"(torch {torch.__version__}, onnx {onnx.__version__}, Python {platform.python_version()})",
        "",
        table,
        "",
        f"onnxruntime vs torch max abs error: {summary['max_abs_error']:.3g}; formats: {summary['formats']};",
        f"densified (TVM import) model: {summary['densified_bytes']} bytes.",
        f"onnxruntime session creation (median of 5, 1 thread, shared CPU): compressed "
        f"{1000 * summary['load_compressed_s']:.1f} ms, densified {1000 * summary['load_dense_s']:.1f} ms.",
        "",
        "Compressed file by part (bytes): "
        + ", ".join(f"{part} {size}" for part, size in summary["breakdown"].items()) + ".",
    ])
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
