"""Per-layer latency tables: each layer compiled alone, through the real compile path, at each sparsity.

NetAdapt's latency tables (Yang et al., "NetAdapt: Platform-Aware Neural Network Adaptation for
Mobile Applications", ECCV 2018) measured with the kernels the compile stage would pick: one conv or
linear layer (with its bias and ReLU, as the compile stage fuses them) becomes its own ONNX model,
with ``round(s * #blocks)`` of its ``r x c`` weight blocks (GEMM view: output channels x
input channels * taps) set to zero and, for ``ternary``, the rest at ``{-a, +a}``; it is exported by
:func:`deploy.onnx.export_onnx` and built by :func:`deploy.tvm.compile.compile_onnx` for the host, and
every level of one layer is timed interleaved (:func:`deploy.bench.measure_interleaved`) with a
ReLU-only model over the same input, and the table holds ``median(level) - median(ReLU only)``: the
kernel's own time, without the VM call that the whole network pays once.

Tables are cached per CPU model and kernel version (a digest of ``deploy/tvm/kernels`` and the TVM
version) in a JSON file, one entry per layer shape, precision, block and level.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from compress.types import BlockShape, QuantRecord, SparsityLayout
import deploy.tvm.kernels as kernels
from deploy.bench.interleave import measure_interleaved
from deploy.bench.machine import cpu_model
from deploy.runtimes import load_session

PRECISIONS = ("fp32", "ternary")


def default_cache_dir() -> Path:
    """``$COMPRESS_CACHE_DIR`` or ``$XDG_CACHE_HOME/compress`` (``~/.cache/compress``), then ``layer-latency``."""
    root = os.environ.get("COMPRESS_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "compress"
    return Path(root) / "layer-latency"


@dataclass(frozen=True)
class LayerShape:
    """A conv or linear layer as the kernel sees it (batch 1).

    Attributes:
        kind: ``"conv"`` or ``"linear"``.
        in_channels: input channels (features for linear).
        out_channels: output channels (features for linear).
        kernel: square kernel size (1 for linear).
        stride: conv stride.
        padding: conv zero padding.
        height: input height (1 for linear).
        width: input width (1 for linear).
    """

    kind: str
    in_channels: int
    out_channels: int
    kernel: int = 1
    stride: int = 1
    padding: int = 0
    height: int = 1
    width: int = 1

    def __post_init__(self) -> None:
        if self.kind not in ("conv", "linear"):
            raise ValueError(f"layer kind must be conv or linear, got {self.kind!r}")

    def key(self) -> str:
        return ",".join(f"{k}={v}" for k, v in asdict(self).items())

    def input_shape(self) -> tuple[int, ...]:
        return (1, self.in_channels, self.height, self.width) if self.kind == "conv" else (1, self.in_channels)

    def weight_bytes(self, sparsity_ratio: float, *, precision: str, block: BlockShape) -> float:
        """Stored bytes of the weight at ``sparsity_ratio``: kept values (4 bytes fp32, 2 bits
        ternary) plus one 4-byte block index per kept block (BSR-style)."""
        numel = self.out_channels * self.in_channels * self.kernel * self.kernel
        kept = numel * (1.0 - sparsity_ratio)
        bits = 32 if precision == "fp32" else 2
        return kept * bits / 8 + 4 * kept / (block.rows * block.cols)


def kernel_version() -> str:
    """Digest of the kernel sources and the TVM version: a new kernel invalidates cached tables."""
    import tvm

    digest = hashlib.sha256(tvm.__version__.encode())
    for path in sorted(Path(kernels.__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def cache_path(cache_dir: Path | None = None) -> Path:
    """The cache file of this machine's CPU model and the current kernels."""
    slug = "".join(ch if ch.isalnum() else "-" for ch in cpu_model()).strip("-").lower()
    return Path(cache_dir or default_cache_dir()) / f"{slug}-{kernel_version()}.json"


def layer_table(shape: LayerShape, levels: list[float], *, precision: str = "fp32", block: BlockShape = BlockShape(16, 1),
                threads: int = 1, runs: int = 40, warmup: int = 10, cache_dir: Path | None = None, seed: int = 0) -> dict:
    """``{"seconds": [...], "kernels": [...], "cached": bool}``: the median time of the layer's
    compiled kernel at each sparsity level (the VM call taken out), and the kernel the compile stage
    chose there.

    Raises:
        ValueError: an unknown precision or a level outside [0, 1).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if any(not 0.0 <= s < 1.0 for s in levels):
        raise ValueError(f"sparsity levels must be in [0, 1), got {levels}")
    path = cache_path(cache_dir)
    cache = _read(path)
    keys = [f"v2|{shape.key()}|{precision}|{block.rows}x{block.cols}|t{threads}|{s:.4f}" for s in levels]
    if all(key in cache for key in keys):
        return {"seconds": [cache[k]["seconds"] for k in keys], "kernels": [cache[k]["kernel"] for k in keys], "cached": True}
    measured = _measure(shape, levels, precision=precision, block=block, threads=threads, runs=runs, warmup=warmup, seed=seed)
    cache = _read(path)  # another process may have written meanwhile
    cache.update(dict(zip(keys, measured)))
    _write(path, cache)
    return {"seconds": [m["seconds"] for m in measured], "kernels": [m["kernel"] for m in measured], "cached": False}


def layer_module(shape: LayerShape, sparsity_ratio: float, *, precision: str, block: BlockShape, seed: int = 0) -> nn.Module:
    """The layer (+ ReLU) with ``round(s * #blocks)`` random ``block``s of its GEMM view zeroed."""
    generator = torch.Generator().manual_seed(seed)
    if shape.kind == "conv":
        layer = nn.Conv2d(shape.in_channels, shape.out_channels, shape.kernel, stride=shape.stride, padding=shape.padding)
    else:
        layer = nn.Linear(shape.in_channels, shape.out_channels)
    with torch.no_grad():
        weight = torch.randn(layer.weight.shape, generator=generator)
        matrix = weight.reshape(shape.out_channels, -1)
        rows, cols = -(-matrix.shape[0] // block.rows), -(-matrix.shape[1] // block.cols)
        dropped = torch.randperm(rows * cols, generator=generator)[: round(sparsity_ratio * rows * cols)]
        keep = torch.ones(rows * cols)
        keep[dropped] = 0
        full = keep.reshape(rows, cols).repeat_interleave(block.rows, 0).repeat_interleave(block.cols, 1)
        matrix.mul_(full[: matrix.shape[0], : matrix.shape[1]])
        if precision == "ternary":
            matrix.copy_(torch.sign(matrix) * 0.05)
        layer.weight.copy_(weight)
        layer.bias.copy_(torch.randn(layer.bias.shape, generator=generator) * 0.1)
    return nn.Sequential(layer, nn.ReLU()).eval()


def _measure(shape: LayerShape, levels: list[float], *, precision: str, block: BlockShape, threads: int, runs: int, warmup: int, seed: int) -> list[dict]:
    x = np.random.default_rng(seed).random(shape.input_shape(), dtype=np.float32)
    calls, kernels = {}, []
    with tempfile.TemporaryDirectory(prefix="compress-layer-") as tmp:
        empty = load_session("tvm", _build_empty(x, Path(tmp) / "empty"), threads=threads)
        calls["empty"] = lambda: empty.run_one(x)
        for index, ratio in enumerate(levels):
            library, kernel = _build(layer_module(shape, ratio, precision=precision, block=block, seed=seed), x,
                                     Path(tmp) / str(index), precision=precision, block=block)
            session = load_session("tvm", library, threads=threads)
            calls[str(index)] = (lambda s=session: s.run_one(x))
            kernels.append(kernel)
        stats = measure_interleaved(calls, warmup=warmup, runs=runs, progress=False)
    call = stats["empty"].median_ms / 1000.0
    return [{"seconds": max(stats[str(i)].median_ms / 1000.0 - call, 0.0), "call_seconds": call, "kernel": kernels[i]} for i in range(len(levels))]


def _build_empty(x: np.ndarray, out_dir: Path) -> Path:
    """A ReLU over the layer's input, built the same way: the VM call and the input's own cost, which
    every level's time includes and the table leaves out."""
    import onnx

    from deploy.onnx.torch_export import export_dense
    from deploy.tvm.compile import compile_onnx

    out_dir.mkdir(parents=True, exist_ok=True)
    onnx.save(export_dense(nn.Sequential(nn.ReLU()).eval(), torch.from_numpy(x), opset=17), out_dir / "empty.onnx")
    return compile_onnx(out_dir / "empty.onnx", target="host", out_dir=out_dir / "host", input_shape=x.shape).library_path


def _build(module: nn.Module, x: np.ndarray, out_dir: Path, *, precision: str, block: BlockShape) -> tuple[Path, str]:
    """Export and compile one layer for the host; returns the library and the chosen kernel's name."""
    from deploy.onnx import export_onnx
    from deploy.tvm.compile import compile_onnx

    weight = module[0].weight
    nnz = int((weight != 0).sum())
    layouts = [SparsityLayout("0.weight", "block", block, nnz, weight.numel())]
    quant = [QuantRecord("0.weight", "ternary", 2, tuple(weight.shape), (0.05,))] if precision == "ternary" else []
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / "layer.onnx"
    export_onnx(module, torch.from_numpy(x), onnx_path, layouts=layouts, quant=quant, encoding="auto")
    result = compile_onnx(onnx_path, target="host", out_dir=out_dir / "host", input_shape=x.shape)
    kernel = result.layers[0].choice.kernel if result.layers else "none"
    return result.library_path, kernel


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)
