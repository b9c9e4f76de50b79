"""Imports every training-method module so that each registers itself in ``METHODS``."""

from compress.optim import admm  # noqa: F401
from compress.optim import group_lasso  # noqa: F401
from compress.optim import l1_prox  # noqa: F401
from compress.optim import rgsm  # noqa: F401
from compress.optim import rvsm  # noqa: F401
from compress.optim import sgl  # noqa: F401
from compress.optim import slimming  # noqa: F401
from compress.optim import ssgd  # noqa: F401
from compress.optim import xrda  # noqa: F401
