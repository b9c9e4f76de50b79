"""The search's starting point when the recipe trains for sparsity: its ``train-sparse`` step runs once.

Sparsity-promoting training (xRDA, RGSM, ...) drives whole blocks of weights to zero before anything
is pruned, so pruning it to a given ratio costs far less accuracy than pruning the dense weights
(the recipes' own evidence). The goal search therefore keeps that step: it is run once into
``goal/sparse`` (a run of the recipe's train-sparse step alone, resumable like any run), the
sensitivity sweep measures the sparse-trained model, and every candidate is the recipe itself
(train-sparse, then prune to the allocation with ``layer_sparsity``, masked fine-tuning, the
recipe's quantize / export / compile / report) whose train-sparse stage is that one finished
stage, reused rather than trained again: the candidate's run directory starts as a copy of
``goal/sparse`` whose manifest names the candidate's recipe, and the runner skips the stage whose
id (config, input digest, options) it already holds. The candidate's input, and so its report's
"dense" variant and accuracy drop, stays the dense original.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pipeline.atomic import sha256_json
from pipeline.execute import execute
from pipeline.manifest import MANIFEST_NAME, read_manifest, write_manifest
from pipeline.model.run_input import RunInput
from pipeline.recipe import Step, recipe_to_dict
from pipeline.run_lock import LOCK_NAME

SPARSE_RUN = "sparse"
TRAIN_SPARSE = "train-sparse"


def train_sparse_step(steps: list[Step]) -> Step | None:
    """The recipe's train-sparse step (the first one), or ``None`` when it has none."""
    return next((s for s in steps if s.use == TRAIN_SPARSE), None)


def sparse_trained_model(steps: list[Step], *, run_input: RunInput, goal_dir: Path, options, resume: bool, log) -> Path | None:
    """Run the recipe's train-sparse step once into ``goal/sparse`` (resumed when it is there) and
    return the sparse-trained model bundle; ``None`` (nothing run) for a recipe without that step."""
    step = train_sparse_step(steps)
    if step is None:
        return None
    sparse_dir = goal_dir / SPARSE_RUN
    log(f"goal: the recipe's {TRAIN_SPARSE} step, once, as the search's starting point ({sparse_dir})")
    manifest = execute([step], run_input=run_input, run_dir=sparse_dir, options=options,
                       resume=resume and (sparse_dir / MANIFEST_NAME).exists(), until=None, dry_run=False,
                       log=lambda line: log(f"  sparse: {line}"))
    record = next(r for r in manifest["stages"] if r["name"] == TRAIN_SPARSE)
    return sparse_dir / record["outputs"]["model"]["path"]


def seed_candidate(candidate_steps: list[Step], *, goal_dir: Path, candidate_dir: Path) -> bool:
    """Start ``candidate_dir`` as a copy of the finished ``goal/sparse`` run, its manifest naming the
    candidate's recipe, so the candidate's run (``resume=True``) skips its train-sparse stage.
    Returns whether it did (no train-sparse run to reuse, or a candidate already started: ``False``)."""
    sparse_dir = goal_dir / SPARSE_RUN
    first = candidate_steps[0].use if candidate_steps else None
    if first != TRAIN_SPARSE or not (sparse_dir / MANIFEST_NAME).exists() or (candidate_dir / MANIFEST_NAME).exists():
        return False
    shutil.rmtree(candidate_dir, ignore_errors=True)
    shutil.copytree(sparse_dir, candidate_dir, ignore=shutil.ignore_patterns(LOCK_NAME))
    manifest = read_manifest(candidate_dir)
    manifest["recipe"] = recipe_to_dict(candidate_steps)
    manifest["recipe_sha256"] = sha256_json(manifest["recipe"])
    write_manifest(candidate_dir, manifest)
    return True


__all__ = ["SPARSE_RUN", "seed_candidate", "sparse_trained_model", "train_sparse_step"]
