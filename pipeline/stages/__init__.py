"""The pipeline's stages: the one list that gives their order (that of ``compress run``), their
registry (recipes, ``compress <stage>``) and the summaries the CLI shows.

A new stage is one file here (a ``Stage`` subclass) plus one entry in ``STAGE_CLASSES``.
"""

from __future__ import annotations

from compress.registry import Registry
from pipeline.stage import Stage
from pipeline.stages.compile import CompileStage
from pipeline.stages.export import ExportStage
from pipeline.stages.prune import PruneStage
from pipeline.stages.quantize import QuantizeStage
from pipeline.stages.report import ReportStage
from pipeline.stages.train_sparse import TrainSparseStage

STAGE_CLASSES: tuple[type[Stage], ...] = (TrainSparseStage, PruneStage, QuantizeStage, ExportStage, CompileStage, ReportStage)

STAGES: Registry[type[Stage]] = Registry("stage", STAGE_CLASSES)


def stage_class(name: str) -> type[Stage]:
    """The stage called ``name`` (``KeyError`` naming the allowed ones otherwise)."""
    return STAGES.get(name)


def list_stages() -> list[str]:
    """Stage names in run order."""
    return [cls.name for cls in STAGE_CLASSES]
