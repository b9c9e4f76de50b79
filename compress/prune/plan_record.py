"""``ChannelPlan``: the typed record of a channel-pruning plan, and its JSON form.

JSON form ``compress-channel-plan/1`` (stored in model bundles and ``channel-plans.json``)::

    {"format": "compress-channel-plan/1", "importance": str, "channel_ratio": float | None,
     "channel_multiple": int,
     "modules": {fqn: {"kind": "conv"|"depthwise"|"linear"|"batchnorm",
                       "in_size": int, "out_size": int, "in_keep": [int], "out_keep": [int]}},
     "masked": {weight fqn: {"shape": [int], "channels": [int]}},   # fallback: zeroed, not removed
     "removed_classes": int, "prunable_classes": int, "exact": bool, "notes": [str]}

Only modules whose channel count changes are listed. ``exact`` is true when every removed class was
dead (exactly zero), so removal does not change the model's outputs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

PLAN_FORMAT = "compress-channel-plan/1"
MODULE_KINDS = ("conv", "depthwise", "linear", "batchnorm")


class ChannelPlanError(ValueError):
    """A channel plan that is malformed or does not fit the model it is replayed on."""


@dataclass(frozen=True)
class ModuleChannels:
    """The channels one module keeps: ``in_keep`` of ``in_size`` inputs, ``out_keep`` of ``out_size`` outputs."""

    kind: str
    in_size: int
    out_size: int
    in_keep: list[int]
    out_keep: list[int]


@dataclass(frozen=True)
class MaskedChannels:
    """Output channels zeroed (not removed) in a weight of ``shape``."""

    shape: list[int]
    channels: list[int]


@dataclass(frozen=True)
class ChannelPlan:
    """Which channels of which module are kept; replayed by ``apply_channel_plan``."""

    importance: str
    channel_ratio: float | None
    channel_multiple: int
    modules: dict[str, ModuleChannels] = field(default_factory=dict)
    masked: dict[str, MaskedChannels] = field(default_factory=dict)
    removed_classes: int = 0
    prunable_classes: int = 0
    exact: bool = True
    notes: list[str] = field(default_factory=list)

    def removed_output_channels(self) -> int:
        """Output channels of conv / depthwise / linear layers that the plan removes."""
        return sum(m.out_size - len(m.out_keep) for m in self.modules.values() if m.kind != "batchnorm")

    def to_dict(self) -> dict[str, Any]:
        return {"format": PLAN_FORMAT, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Any) -> ChannelPlan:
        """Parse the JSON form.

        Raises:
            ChannelPlanError: when a key is missing, a value has the wrong type or the format is unknown.
        """
        if not isinstance(data, dict) or data.get("format") != PLAN_FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ChannelPlanError(f"unknown channel plan format {found!r}; allowed: {PLAN_FORMAT!r}")
        try:
            modules = {str(fqn): _module(entry) for fqn, entry in data["modules"].items()}
            masked = {str(fqn): MaskedChannels(_ints(e["shape"]), _ints(e["channels"])) for fqn, e in data["masked"].items()}
            ratio = data["channel_ratio"]
            return cls(
                importance=str(data["importance"]),
                channel_ratio=None if ratio is None else float(ratio),
                channel_multiple=int(data["channel_multiple"]),
                modules=modules,
                masked=masked,
                removed_classes=int(data["removed_classes"]),
                prunable_classes=int(data["prunable_classes"]),
                exact=bool(data["exact"]),
                notes=[str(note) for note in data["notes"]],
            )
        except KeyError as error:
            raise ChannelPlanError(f"channel plan lacks key {error.args[0]!r}") from None
        except (TypeError, ValueError, AttributeError) as error:
            raise ChannelPlanError(f"channel plan has a malformed value: {error}") from None


def _module(entry: dict[str, Any]) -> ModuleChannels:
    if entry["kind"] not in MODULE_KINDS:
        raise ValueError(f"unknown module kind {entry['kind']!r}; allowed: {', '.join(MODULE_KINDS)}")
    return ModuleChannels(str(entry["kind"]), int(entry["in_size"]), int(entry["out_size"]), _ints(entry["in_keep"]), _ints(entry["out_keep"]))


def _ints(values: Any) -> list[int]:
    if not isinstance(values, (list, tuple)) or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise TypeError(f"expected a list of integers, got {values!r}")
    return list(values)
