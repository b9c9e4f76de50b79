"""train-sparse under ``torchrun`` (2 CPU processes, gloo, DistributedSampler shards) equals one process with the same global batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pipeline.training import distributed
from pipeline.errors import UserError
from pipeline.manifest import read_manifest
from tests.pipeline.conftest import TINY_FACTORY, save_tiny_bundle

REPO = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-5
TORCHRUN = ("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2")


def _train(model: Path, out: Path, *, launcher: tuple[str, ...], method: str, batch_size: int, lr: float) -> None:
    command = [
        sys.executable, *launcher, "-m", "pipeline", "--quiet", "train-sparse", str(model), "--method", method,
        "--lr", str(lr), "--data", "digits", "--train-limit", "256", "--test-limit", "64", "--epochs", "2",
        "--batch-size", str(batch_size), "--threads", "1", "--out", str(out), "--arch", TINY_FACTORY,
    ]
    env = {key: value for key, value in os.environ.items() if key not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    completed = subprocess.run(command, cwd=REPO, env={**env, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]


def _result(out: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    record = read_manifest(out)["stages"][0]
    bundle = torch.load(out / record["outputs"]["model"]["path"], map_location="cpu", weights_only=True)
    return record["metrics"], bundle["state_dict"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "method,batch_size,lr",
    [("l1-prox", 32, 0.05), ("rvsm", 34, 0.1)],  # 34: a last batch of 18 (9 per rank)
)
def test_two_processes_match_one_process(tmp_path, method, batch_size, lr):
    model = save_tiny_bundle(tmp_path / "tiny.pt", arch=TINY_FACTORY)
    _train(model, tmp_path / "one", launcher=(), method=method, batch_size=batch_size, lr=lr)
    _train(model, tmp_path / "two", launcher=TORCHRUN, method=method, batch_size=batch_size, lr=lr)
    single, single_weights = _result(tmp_path / "one")
    double, double_weights = _result(tmp_path / "two")
    assert single_weights.keys() == double_weights.keys()
    worst = max(float((single_weights[k] - double_weights[k]).abs().max()) for k in single_weights)
    assert worst <= TOLERANCE
    assert double["nonzero_weights"] == single["nonzero_weights"]
    assert double["weight_sparsity"] == pytest.approx(single["weight_sparsity"], abs=1e-9)
    assert double["test_accuracy"] == pytest.approx(single["test_accuracy"], abs=1e-9)
    assert [h["loss"] for h in double["history"]] == pytest.approx([h["loss"] for h in single["history"]], abs=1e-5)
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())


def test_distributed_sampler_shards_cover_the_single_process_batch_when_ranks_read_their_shard():
    from pipeline.data import load_dataset

    data = load_dataset("digits", train_limit=100)
    single = [y.tolist() for _, y in data.train_batches(batch_size=34, seed=1, epoch=2)]
    shards = [[y.tolist() for _, y in data.train_batches(batch_size=34, seed=1, epoch=2, rank=me, world=2)] for me in range(2)]
    assert [len(batch) for batch in shards[0]] == [17, 17, 16]  # 100 = 34 + 34 + 32: every rank half of each batch
    for index, batch in enumerate(single):
        assert sorted(shards[0][index] + shards[1][index]) == sorted(batch)


def test_batch_size_not_a_multiple_of_the_world_is_refused():
    from pipeline.data import load_dataset

    data = load_dataset("digits", train_limit=64)
    with pytest.raises(UserError, match="multiple of 2, got 33"):
        next(iter(data.train_batches(batch_size=33, seed=0, epoch=0, rank=0, world=2)))


def test_outside_torchrun_everything_is_single_process(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert (distributed.world_size(), distributed.rank(), distributed.is_distributed(), distributed.is_main()) == (1, 0, False, True)
    assert distributed.broadcast_object({"a": 1}) == {"a": 1}
    assert distributed.all_reduce_sum(2.5) == 2.5
