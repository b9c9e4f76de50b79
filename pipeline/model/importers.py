"""Turn whatever model file the user gives into a validated ``ModelBundle``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from compress.models import list_models, model_input_shape
from compress.stats import has_non_finite
from pipeline.errors import PickleRefused, UserError
from pipeline.model.bundle import (
    BUNDLE_FORMAT,
    SOURCE_KINDS,
    ModelBundle,
    _load_weights_only,
    build_architecture,
    build_model,
    load_source_module,
    load_torchscript,
    source_kind,
    trusted_archs_for,
)

MODEL_SUFFIXES = (".pt", ".pth", ".ckpt", ".pt2", ".onnx", ".bin")


def import_model(
    path: Path,
    *,
    arch: str | None = None,
    arch_kwargs: dict[str, Any] | None = None,
    input_shape: tuple[int, ...] | None = None,
    trust_pickle: bool = False,
) -> ModelBundle:
    """Load ``path`` (bundle, state_dict, TorchScript, .pt2, or trusted pickle) and validate it."""
    path = Path(path).resolve()
    if not path.exists():
        raise UserError(f"model file {path} does not exist")
    if path.is_dir():
        raise UserError(f"model path {path} is a directory, not a model file")
    if path.stat().st_size == 0:
        raise UserError(f"model file {path} is empty")
    trusted = trusted_archs_for(path, arch=arch, trust_pickle=trust_pickle)
    bundle = _read_any(path, arch=arch, arch_kwargs=arch_kwargs or {}, trust_pickle=trust_pickle, trusted=trusted)
    if input_shape:
        bundle.input_shape = tuple(input_shape)
    if not bundle.input_shape:
        raise UserError(f"{path}: the input shape is unknown; pass --input-shape C,H,W")
    model = build_model(bundle, trust_pickle=trust_pickle, trusted_archs=trusted)
    if not any(True for _ in model.parameters()):
        raise UserError(f"{path}: the model has no parameters; there is nothing to train, prune, quantize or compress")
    bad = has_non_finite(model)
    if bad:
        raise UserError(f"{path}: weight {bad} holds NaN or Inf values")
    check_forward(model, bundle.input_shape)
    return bundle


def check_forward(model: nn.Module, input_shape: tuple[int, ...]) -> torch.Tensor:
    """Run one zero batch; a shape mismatch becomes a one-line ``UserError``."""
    try:
        with torch.no_grad():
            output = model.eval()(torch.zeros(2, *input_shape))
    except Exception as error:  # the user's model may raise anything on a wrong shape
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise UserError(f"model rejects input shape {list(input_shape)}: {first}") from None
    if not isinstance(output, torch.Tensor) or output.dim() != 2:
        raise UserError(f"model must return a (batch, classes) tensor of logits, got {getattr(output, 'shape', type(output))}")
    return output


def _read_any(path: Path, *, arch: str | None, arch_kwargs: dict[str, Any], trust_pickle: bool, trusted: tuple[str, ...]) -> ModelBundle:
    kind = source_kind(path)  # decided once, from the file's own records
    if kind == "export":
        return _from_module(f"export:{path}", load_source_module("export", path, trust_pickle=trust_pickle), arch_kwargs)
    if path.suffix == ".pt2":
        raise UserError(f"{path} is not a torch.export archive (no archive_format record saying pt2)")
    if kind == "torchscript":  # its weights now; it is converted to torch modules once the input shape is known
        try:
            module = load_torchscript(path)
        except RuntimeError as error:
            raise UserError(f"{path} is not a loadable TorchScript file: {str(error).splitlines()[0][:160]}") from None
        return _from_module(f"torchscript:{path}", module, arch_kwargs)
    try:
        data = _load_weights_only(path)
    except PickleRefused:
        if not trust_pickle:
            raise
        return _from_module(f"pickle:{path}", load_source_module("pickle", path, trust_pickle=True), arch_kwargs)
    return _from_checkpoint(path, data, arch=arch, arch_kwargs=arch_kwargs, trusted=trusted)


def _from_checkpoint(path: Path, data: Any, *, arch: str | None, arch_kwargs: dict[str, Any], trusted: tuple[str, ...]) -> ModelBundle:
    if isinstance(data, dict) and data.get("format") == BUNDLE_FORMAT:
        bundle = ModelBundle.from_dict(data, source=str(path))
        if arch and arch != bundle.arch:
            raise UserError(f"{path} was saved for architecture {bundle.arch!r}, not --arch {arch!r}")
        return bundle
    if not isinstance(data, dict):
        raise UserError(f"{path} holds a {type(data).__name__}; expected a state_dict or a checkpoint dict")
    state = data.get("state_dict", data)
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{path} holds no state_dict of tensors")
    if not arch and str(data.get("arch", "")).partition(":")[0] in SOURCE_KINDS:
        raise UserError(f"{path} names a model file as its architecture ({str(data['arch'])[:80]!r}); a checkpoint may only "
                        "name a registered architecture")
    arch = arch or data.get("arch")
    if not arch:
        raise UserError(f"{path} is a state_dict: pass --arch (one of {', '.join(list_models())}, or package.module:factory)")
    build_architecture(str(arch), arch_kwargs, trusted_archs=trusted)  # fails early with the allowed names
    shape = data.get("input_shape") or _registry_input_shape(str(arch))
    return ModelBundle(arch=str(arch), arch_kwargs=arch_kwargs, input_shape=tuple(shape or ()), state_dict=dict(state))


def _from_module(arch: str, module: nn.Module, arch_kwargs: dict[str, Any]) -> ModelBundle:
    return ModelBundle(arch=arch, arch_kwargs=arch_kwargs, input_shape=(), state_dict=dict(module.state_dict()))


def _registry_input_shape(arch: str) -> tuple[int, ...] | None:
    return model_input_shape(arch) if arch in list_models() else None

