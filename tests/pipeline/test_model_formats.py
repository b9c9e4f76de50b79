"""A user's model in any accepted format goes through every stage as real torch modules, and the
preprocessing it was evaluated with is recorded in the manifest, every bundle, the ONNX metadata and
the arm64 bundle's preprocess.json."""

from __future__ import annotations

import gzip
import json

import numpy as np
import onnx
import pytest
import torch

from deploy.onnx import read_preprocess
from pipeline.cli import main
from pipeline.manifest import read_manifest
from pipeline.model.bundle import load_bundle
from tests.pipeline.tiny import TinyResidual

RECIPE = """
stages:
  - use: train-sparse
    with: {method: l1-prox, epochs: 1}
  - use: prune
    with: {sparsity-ratio: 0.5, epochs: 1}
  - use: quantize
    with: {method: ternary, epochs: 1}
  - use: export
  - use: compile
"""
COMMON = ["--train-limit", "96", "--test-limit", "48", "--threads", "1"]


def _save(tmp_path, kind: str):
    torch.manual_seed(0)
    model = TinyResidual().eval()
    if kind == "torchscript":
        path = tmp_path / "model_ts.pt"
        torch.jit.script(model).save(str(path))
    elif kind == "export":
        path = tmp_path / "model.pt2"
        torch.export.save(torch.export.export(model, (torch.randn(1, 1, 8, 8),)), str(path))  # static batch 1, as users export
    else:
        path = tmp_path / "model_pickle.pt"
        torch.save(model, path)
    return path


def _run(capsys, tmp_path, model, *extra) -> tuple[int, str]:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE)
    with pytest.raises(SystemExit) as done:
        main(["--quiet", "run", str(model), "--recipe", str(recipe), "--target", "arm64", "--out", str(tmp_path / "run"), *COMMON, *extra])
    captured = capsys.readouterr()
    return done.value.code, captured.err


def _recorded(run) -> list[dict]:
    """The preprocessing in the manifest, the last bundle, the ONNX metadata and preprocess.json."""
    manifest = read_manifest(run)
    stages = {r["name"]: r for r in manifest["stages"]}
    bundle = load_bundle(run / stages["quantize"]["outputs"]["model"]["path"]).preprocess
    metadata = read_preprocess(onnx.load(str(run / stages["export"]["outputs"]["onnx"]["path"])))
    device = json.loads((run / stages["compile"]["outputs"]["bundle-manifest"]["path"]).parent.joinpath("preprocess.json").read_text())["preprocess"]
    return [manifest["preprocess"], bundle, metadata, device]


@pytest.mark.parametrize("kind", ["torchscript", "export", "pickle"])
def test_traced_and_pickled_models_with_batch_norm_and_a_residual_go_through_every_stage(tmp_path, capsys, kind):
    model = _save(tmp_path, kind)
    extra = ["--input-shape", "1,8,8", "--data", "digits"] + (["--trust-pickle"] if kind == "pickle" else [])
    code, err = _run(capsys, tmp_path, model, *extra)
    assert code == 0, err
    stages = {r["name"]: r for r in read_manifest(tmp_path / "run")["stages"]}
    layers = {layer["fqn"] for layer in stages["prune"]["metrics"]["layers"]}
    assert {"conv1.weight", "conv2.weight", "fc.weight"} <= layers, "the stages must see the convolutions and the linear layer"
    assert stages["prune"]["metrics"]["weight_sparsity"] >= 0.45, "pruning must reach the model's layers"
    assert stages["quantize"]["metrics"]["quantized_layers"], "quantization must find layers to quantize"
    assert stages["export"]["metrics"]["onnx_test_accuracy"] == pytest.approx(stages["quantize"]["metrics"]["test_accuracy"], abs=1 / 48)
    for record in _recorded(tmp_path / "run"):
        assert record["scale"] == pytest.approx(1 / 16) and record["layout"] == "NCHW" and record["channels"] == 1


def _idx(path, array):
    header = b"\x00\x00\x08" + bytes([array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + array.tobytes()))


def test_an_idx_folder_with_mean_and_std_records_scale_mean_and_std_everywhere(tmp_path, capsys):
    rng = np.random.default_rng(0)
    folder = tmp_path / "idx"
    folder.mkdir()
    for split, count in (("train", 96), ("t10k", 48)):
        _idx(folder / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (count, 8, 8), dtype=np.uint8))
        _idx(folder / f"{split}-labels-idx1-ubyte.gz", (np.arange(count) % 10).astype(np.uint8))
    torch.manual_seed(0)
    state = tmp_path / "state.pt"
    torch.save(TinyResidual().state_dict(), state)
    code, err = _run(capsys, tmp_path, state, "--arch", "tests.pipeline.tiny:TinyResidual", "--input-shape", "1,8,8",
                     "--data", str(folder), "--mean", "0.286", "--std", "0.353")
    assert code == 0, err
    for record in _recorded(tmp_path / "run"):
        assert record["scale"] == pytest.approx(1 / 255), "integer pixels are scaled to [0, 1] by default"
        assert record["mean"] == pytest.approx([0.286]) and record["std"] == pytest.approx([0.353])
        low, high = record["input_range"]
        assert -0.82 <= low and high <= (1 - 0.286) / 0.353 + 1e-4


def test_the_chosen_scale_is_printed_once(tmp_path, capsys):
    """Integer pixels are scaled to [0, 1] whatever the source, and the run says so in one line."""
    pixels = np.random.default_rng(0).integers(0, 256, (40, 1, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "ints.npz", x=pixels, y=np.arange(40) % 10)
    torch.save(TinyResidual().state_dict(), tmp_path / "state.pt")
    with pytest.raises(SystemExit) as done:
        main(["run", str(tmp_path / "state.pt"), "--arch", "tests.pipeline.tiny:TinyResidual", "--input-shape", "1,8,8",
              "--data", str(tmp_path / "ints.npz"), "--mean", "0.5", "--std", "0.25", "--out", str(tmp_path / "run"), "--dry-run"])
    err = capsys.readouterr().err
    assert done.value.code == 0, err
    assert err.count("x = (raw * 0.00392157 - mean [0.5]) / std [0.25]") == 1
