"""Accuracy of the shipped device bundle on real test images, run under its emulator, against onnxruntime.

The compile stage checks the bundle on one probe input; this runs the first ``images`` test images
through the bundle's own runner (one emulator process for all of them, e.g. qemu-aarch64 for an
AArch64 bundle) and through onnxruntime on the compiled ONNX, and compares predictions and logits.
Emulated timings say nothing about device speed, so only numbers are compared here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deploy.runtimes import load_session
from deploy.tvm.bundle import bundle_target, checked_bundle
from deploy.tvm.errors import BundleError, TargetError
from deploy.tvm.targets import bundle_kind
from pipeline.errors import StageError
from pipeline.manifest import Artifact
from pipeline.report.data import VariantModel
from pipeline.stage import StageContext

LOGIT_ATOL = 1e-3


def bundle_check(ctx: StageContext, models: dict[str, VariantModel], *, images: int) -> tuple[dict[str, Any] | None, list[str]]:
    """Accuracy of the bundle under its emulator and of onnxruntime on the same images, or ``None``
    when there is no bundle, no emulator or ``images == 0`` (the note says which)."""
    bundle = bundle_dir(ctx.history, ctx.run_dir)
    compiled = models.get("compiled")
    if images == 0 or bundle is None or compiled is None or compiled.onnx is None:
        return None, []
    try:
        kind = bundle_kind(bundle_target(bundle))
    except (BundleError, TargetError) as error:
        raise StageError(f"report: {error}") from None
    if not kind.emulator_installed():
        return None, [f"The {kind.name} bundle was not run on test images: {kind.emulator} is not installed."]

    data = ctx.load_data(models["dense"].input_shape)
    x = data.test_x[:images].numpy().astype(np.float32)
    labels = data.test_y[:images].numpy()
    ctx.log(f"report: running the {kind.name} bundle under {kind.emulator} on {len(x)} test images")
    try:
        device = kind.run(bundle, x[:, None])
    except BundleError as error:
        raise StageError(f"report: {kind.name} bundle on test images: {error}") from None
    session = load_session("onnxruntime", compiled.onnx)
    reference = np.stack([session.run_one(sample[None]).reshape(-1) for sample in x])
    result = {
        "bundle": kind.name,
        "emulator": kind.emulator,
        "images": int(len(x)),
        "accuracy_bundle": float(np.mean(device.argmax(1) == labels)),
        "accuracy_onnxruntime": float(np.mean(reference.argmax(1) == labels)),
        "top1_agreement": float(np.mean(device.argmax(1) == reference.argmax(1))),
        "max_abs_error": float(np.max(np.abs(device - reference))),
    }
    if result["max_abs_error"] > LOGIT_ATOL:
        raise StageError(f"report: the {kind.name} bundle's logits differ from onnxruntime by {result['max_abs_error']:.3g} "
                         f"(> {LOGIT_ATOL:g}) on the test images")
    note = (f"{kind.name} bundle under {kind.emulator} on the first {result['images']} test images: accuracy "
            f"{result['accuracy_bundle']:.2%} (onnxruntime on the compiled ONNX: {result['accuracy_onnxruntime']:.2%}), "
            f"top-1 agreement {result['top1_agreement']:.2%}, max abs logit difference {result['max_abs_error']:.2g}.")
    return result, [note]


def bundle_dir(history: list[dict[str, Any]], run_dir: Path) -> Path | None:
    """The device bundle folder of a run (from the stage records ``history``), or ``None``; its
    manifest must match the run manifest and every file its manifest (``checked_bundle``), since
    its runner is about to run here under an emulator."""
    for record in reversed(history):
        if record["status"] == "done" and "bundle-manifest" in record["outputs"]:
            folder = Artifact(**record["outputs"]["bundle-manifest"]).verified(run_dir).parent
            try:
                checked_bundle(folder)
            except BundleError as error:
                raise StageError(f"report: the bundle changed after the compile stage made it: {error}") from None
            return folder
    return None
