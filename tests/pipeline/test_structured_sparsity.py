"""Channels a group method zeroes become a smaller network: what train-sparse reports as removable
is exactly what the prune stage then removes, on LeNet-5 and a ResNet."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from compress.models import create_model
from pipeline.cli import main
from pipeline.manifest import read_manifest


def _stage_metrics(run) -> dict:
    return read_manifest(run)["stages"][0]["metrics"]


@pytest.mark.parametrize(
    "arch,axis,lam1",
    [("lenet5", "output", 0.15), ("lenet5", "input", 0.002), ("resnet20", "output", 0.15)],
)
def test_the_channels_train_sparse_reports_removable_are_the_ones_prune_removes(tmp_path, capsys, arch, axis, lam1):
    torch.manual_seed(0)
    model = tmp_path / "model.pt"
    torch.save(create_model(arch).state_dict(), model)
    if arch == "resnet20":
        rng = np.random.default_rng(0)
        np.savez(tmp_path / "data.npz", x=rng.random((48, 3, 32, 32), dtype=np.float32), y=np.arange(48) % 10)
        data = str(tmp_path / "data.npz")
    else:
        data = "digits"
    common = ["--data", data, "--train-limit", "48", "--test-limit", "16", "--threads", "1", "--batch-size", "16"]
    sparse_run, pruned_run = tmp_path / "sparse", tmp_path / "pruned"
    with pytest.raises(SystemExit) as done:
        main(["--quiet", "train-sparse", str(model), "--arch", arch, "--method", "rgsm", "--epochs", "1",
              "--params", f"group_axis={axis}", "--params", f"lam1={lam1}", "--params", "relative_threshold=none",
              "--out", str(sparse_run), *common])
    assert done.value.code == 0, capsys.readouterr().err
    reported = _stage_metrics(sparse_run)["removable_channel_sparsity"]
    assert reported > 0.0, "the method zeroed no removable channel: the test would prove nothing"
    trained = sparse_run / read_manifest(sparse_run)["stages"][0]["outputs"]["model"]["path"]
    with pytest.raises(SystemExit) as done:
        main(["--quiet", "prune", str(trained), "--sparsity-ratio", "0", "--epochs", "0", "--out", str(pruned_run), *common])
    assert done.value.code == 0, capsys.readouterr().err
    pruned = _stage_metrics(pruned_run)
    assert pruned["removed_channel_sparsity"] == pytest.approx(reported)
    assert pruned["channel_sparsity"] >= pruned["removed_channel_sparsity"] > 0, "removed channels count as channel sparsity"
    assert pruned["channel_removal_max_abs_difference"] <= 1e-5
    pruned_model = pruned_run / read_manifest(pruned_run)["stages"][0]["outputs"]["model"]["path"]
    exported_run = tmp_path / "exported"
    with pytest.raises(SystemExit) as done:
        main(["--quiet", "export", str(pruned_model), "--out", str(exported_run), *common[:-2]])
    assert done.value.code == 0, capsys.readouterr().err
    export = _stage_metrics(exported_run)
    assert export["original_dense_bytes"] > export["sizes"]["dense_bytes"], "the ratio must compare with the model before removal"
    assert export["compression_ratio"] == pytest.approx(export["original_dense_bytes"] / export["sizes"]["compressed_bytes"])
    assert export["original_dense_gzip_bytes"] > export["sizes"]["dense_gzip_bytes"]
    original_weights = sum(4 * w.numel() for w in torch.load(model, weights_only=True).values() if w.dim() >= 2)
    assert export["original_dense_weight_bytes"] == original_weights
    stored = sum(layer["stored_bytes"] for layer in export["sizes"]["layers"])
    assert export["weight_compression_ratio"] == pytest.approx(original_weights / stored)
    table = read_manifest(exported_run)["stages"][0]["outputs"]["size-table"]["path"]
    assert "before channel removal" in (exported_run / table).read_text()
