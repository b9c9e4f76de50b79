"""Model bundles (the checkpoint passed between stages) and loading of user model files.

A bundle is a ``torch.save``d plain dict (tensors, strings, numbers, lists), so it loads with
``weights_only=True``; the module is rebuilt from ``arch`` (+ the channel plan of the prune stage).
Accepted user inputs: a bundle, a ``state_dict`` (+ ``--arch``), a TorchScript file, a
``torch.export`` ``.pt2`` file, or, only with ``--trust-pickle``, a fully pickled ``nn.Module``.
"""

from __future__ import annotations

import importlib
import pickle
import sys
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from compress.models import create_model
from compress.prune import ChannelPlan, ChannelPlanError, apply_channel_plan
from compress.types import QuantRecord
from pipeline.atomic import save_torch
from pipeline.errors import PickleRefused, UserError
from pipeline.model.input_shape import check_input_size
from pipeline.model.program_archive import is_program_archive, load_program
from pipeline.model.program_modules import program_to_modules, torchscript_to_modules

BUNDLE_FORMAT = "compress-model/1"
SOURCE_KINDS = ("torchscript", "export", "pickle")


@dataclass
class ModelBundle:
    """Everything needed to rebuild a model: architecture, weights and compression records."""

    arch: str
    input_shape: tuple[int, ...]
    state_dict: dict[str, torch.Tensor]
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    channel_plans: list[dict[str, Any]] = field(default_factory=list)
    layouts: list[dict[str, Any]] = field(default_factory=list)
    quant: list[dict[str, Any]] = field(default_factory=list)
    preprocess: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": BUNDLE_FORMAT,
            "arch": self.arch,
            "arch_kwargs": dict(self.arch_kwargs),
            "input_shape": list(self.input_shape),
            "state_dict": {key: value.detach().cpu().contiguous() for key, value in self.state_dict.items()},
            "channel_plans": list(self.channel_plans),
            "layouts": list(self.layouts),
            "quant": list(self.quant),
            "preprocess": dict(self.preprocess),
            "metrics": dict(self.metrics),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str) -> "ModelBundle":
        try:
            bundle = cls(
                arch=str(data["arch"]),
                arch_kwargs=dict(data.get("arch_kwargs") or {}),
                input_shape=tuple(int(v) for v in data["input_shape"]),
                state_dict=dict(data["state_dict"]),
                channel_plans=list(data.get("channel_plans") or []),
                layouts=list(data.get("layouts") or []),
                quant=list(data.get("quant") or []),
                preprocess=dict(data.get("preprocess") or {}),
                metrics=dict(data.get("metrics") or {}),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise UserError(f"{source}: malformed model bundle ({error})") from None
        _check_records(bundle, source=source)
        return bundle

    def with_model(self, model: nn.Module, **changes: Any) -> "ModelBundle":
        """A copy holding ``model``'s weights and the given field changes."""
        data = {**self.__dict__, "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()}}
        data.update(changes)
        return ModelBundle(**data)


def _check_records(bundle: ModelBundle, *, source: str) -> None:
    """Shapes and records a file declares are checked before anything is built from them."""
    if any(v <= 0 for v in bundle.input_shape):
        raise UserError(f"{source}: input_shape must be positive integers, got {list(bundle.input_shape)}")
    check_input_size(bundle.input_shape, what=f"{source}: input_shape")
    for name in ("channel_plans", "layouts", "quant"):
        bad = [record for record in getattr(bundle, name) if not isinstance(record, dict)]
        if bad:
            raise UserError(f"{source}: malformed model bundle ({name} must hold records, found {type(bad[0]).__name__})")

    for record in bundle.quant:
        try:
            QuantRecord.from_dict(record)
        except (KeyError, TypeError, ValueError) as error:
            missing = f"lacks {error}" if isinstance(error, KeyError) else str(error)
            raise UserError(f"{source}: malformed model bundle (quant record {str(record.get('fqn', '?'))[:60]!r} {missing})") from None


def save_bundle(path: Path, bundle: ModelBundle) -> Path:
    return save_torch(path, bundle.to_dict())


def load_bundle(path: Path) -> ModelBundle:
    data = _load_weights_only(Path(path))
    if not isinstance(data, dict) or data.get("format") != BUNDLE_FORMAT:
        raise UserError(f"{path} is not a compress model bundle")
    return ModelBundle.from_dict(data, source=str(path))


def trusted_archs_for(model_path: Path | None, *, arch: str | None, trust_pickle: bool) -> tuple[str, ...]:
    """The architectures the user's command line vouches for, besides registered names.

    ``--arch`` names a factory; the model file on the command line may be rebuilt from itself
    (``torchscript:`` / ``export:``, and ``pickle:`` only with ``--trust-pickle``). Nothing a data
    file says is added here: a bundle naming ``subprocess:call`` is refused.
    """
    trusted = [arch] if arch else []
    if model_path is not None:
        resolved = Path(model_path).resolve()
        kind = source_kind(resolved) if resolved.is_file() else None
        if kind:  # only the kind the file's own structure shows: a checkpoint never becomes a program
            trusted.append(f"{kind}:{resolved}")
        if trust_pickle:
            trusted.append(f"pickle:{resolved}")
    return tuple(trusted)


def source_kind(path: Path) -> str | None:
    """``"export"`` for a ``torch.export`` archive, ``"torchscript"`` for TorchScript, else ``None``,
    decided once from the file's own records (never from its suffix or what a checkpoint says)."""
    if is_program_archive(path):
        return "export"
    try:
        with zipfile.ZipFile(path) as archive:
            return "torchscript" if any("/code/" in name for name in archive.namelist()) else None
    except (zipfile.BadZipFile, OSError, ValueError):
        return None


def build_model(bundle: ModelBundle, *, trust_pickle: bool = False, trusted_archs: tuple[str, ...] = ()) -> nn.Module:
    """Rebuild the module of a bundle and load its weights (strict key and shape match)."""
    model = build_architecture(bundle.arch, bundle.arch_kwargs, trust_pickle=trust_pickle, trusted_archs=trusted_archs, input_shape=bundle.input_shape)
    if bundle.channel_plans:
        for plan in bundle.channel_plans:
            try:
                model = apply_channel_plan(model, ChannelPlan.from_dict(plan))
            except ChannelPlanError as error:
                raise UserError(f"malformed channel plan in the model bundle: {error}") from None
    load_state_strict(model, bundle.state_dict, arch=bundle.arch)
    model.eval()
    return model


def build_architecture(
    arch: str, arch_kwargs: dict[str, Any], *, trust_pickle: bool = False, trusted_archs: tuple[str, ...] = (),
    input_shape: tuple[int, ...] = (),
) -> nn.Module:
    """Instantiate a registered name, or a trusted ``package.module:factory`` or re-loaded source file
    (TorchScript and ``.pt2`` sources as real torch modules, see ``pipeline.model.program_modules``;
    TorchScript needs ``input_shape``).

    Anything but a registered name imports or loads code, so it must be vouched for by the command
    line (``trusted_archs``: ``--arch`` and the model file given) or by ``--trust-pickle``.
    """
    if ":" in arch and arch not in trusted_archs and not trust_pickle:
        raise UserError(
            f"the model file names architecture {arch!r}, which is not registered; a file may only name a "
            f"registered architecture: pass --arch {arch} if you trust that code"
        )
    kind, _, location = arch.partition(":")
    if kind in SOURCE_KINDS and location:
        return load_source_module(kind, Path(location), trust_pickle=trust_pickle, input_shape=input_shape)
    if ":" in arch:
        return _factory_model(arch, arch_kwargs)

    try:
        return create_model(arch, **arch_kwargs)
    except KeyError as error:
        raise UserError(str(error).strip("'\"") + ", or package.module:factory") from None
    except TypeError as error:
        raise UserError(f"architecture {arch!r} rejected its arguments {arch_kwargs}: {error}") from None


def load_state_strict(model: nn.Module, state_dict: dict[str, torch.Tensor], *, arch: str) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    if missing or unexpected:
        raise UserError(
            f"checkpoint does not match architecture {arch!r}: "
            f"missing keys {_short(missing)}, unexpected keys {_short(unexpected)}"
        )
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise UserError(f"checkpoint entry {key!r} is a {type(value).__name__}, not a tensor")
        if tuple(value.shape) != tuple(expected[key].shape):
            raise UserError(
                f"checkpoint does not match architecture {arch!r}: {key} has shape {list(value.shape)}, "
                f"the architecture expects {list(expected[key].shape)}"
            )
    model.load_state_dict(state_dict, strict=True)


def _short(keys: list[str]) -> str:
    return "[]" if not keys else "[" + ", ".join(keys[:4]) + (", ..." if len(keys) > 4 else "") + "]"


def _factory_model(arch: str, arch_kwargs: dict[str, Any]) -> nn.Module:
    module_name, _, factory_name = arch.partition(":")
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # like `python -m`: factories resolve from the working directory
    try:
        factory = getattr(importlib.import_module(module_name), factory_name)
    except (ImportError, AttributeError) as error:
        raise UserError(f"cannot import architecture factory {arch!r}: {error}") from None
    model = factory(**arch_kwargs)
    if not isinstance(model, nn.Module):
        raise UserError(f"factory {arch!r} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def load_source_module(kind: str, path: Path, *, trust_pickle: bool, input_shape: tuple[int, ...] = ()) -> nn.Module:
    """The module of a TorchScript / ``.pt2`` / pickle source file (the first two converted to real
    torch modules); a file that does not load or convert is one ``UserError`` line."""
    if not path.exists():
        raise UserError(f"model source {path} no longer exists")
    if kind == "torchscript" and not input_shape:
        raise UserError(f"{path}: the input shape is unknown; pass --input-shape C,H,W")
    if kind == "pickle" and not trust_pickle:
        raise UserError(f"{path} is a pickled module; loading it runs code: pass --trust-pickle if you trust it")
    what = {"torchscript": "TorchScript", "export": "torch.export program"}.get(kind, "pickled module")
    if kind in ("torchscript", "export") and source_kind(path) != kind:
        raise UserError(f"{path} is not a {what} file")
    try:
        if kind == "torchscript":
            return torchscript_to_modules(load_torchscript(path), torch.zeros(2, *input_shape))
        if kind == "export":
            return program_to_modules(load_program(path, trust_pickle=trust_pickle))
        module = torch.load(path, map_location="cpu", weights_only=False)
    except UserError:
        raise
    except Exception as error:  # the loaders and the converter raise many types on a file they cannot take
        first = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
        hint = " (its classes must be importable from the working directory)" if kind == "pickle" else ""
        raise UserError(f"{path}: cannot load the {what}{hint}: {first}") from None
    if not isinstance(module, nn.Module):
        raise UserError(f"{path} holds a {type(module).__name__}, not a torch.nn.Module")
    return module


def load_torchscript(path: Path) -> Any:
    """``torch.jit.load`` without its deprecation warning (the user chose the format; the warning is noise)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.load.* is deprecated")
        return torch.jit.load(str(path), map_location="cpu")


def _is_pickle_refusal(path: Path, error: Exception) -> bool:
    """True when weights-only loading refused Python objects (not when the file is just unreadable)."""
    with open(path, "rb") as handle:
        starts_like_pickle = handle.read(1) == b"\x80"
    return "unsupported global" in str(error).lower() or starts_like_pickle


def _load_weights_only(path: Path) -> Any:
    if not path.exists():
        raise UserError(f"model file {path} does not exist")
    if path.stat().st_size == 0:
        raise UserError(f"model file {path} is empty")
    try:
        with warnings.catch_warnings():  # a plain pickle is refused below; torch's protocol warning is noise
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if not _is_pickle_refusal(path, error):
            raise UserError(f"{path} is not a readable PyTorch checkpoint ({str(error).splitlines()[0][:160]})") from None
        raise PickleRefused(
            f"{path} holds Python objects that weights-only loading refuses; pass --trust-pickle only if you trust the file"
        ) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, AttributeError) as error:
        raise UserError(f"{path} is not a readable PyTorch checkpoint ({str(error).splitlines()[0][:160]})") from None
