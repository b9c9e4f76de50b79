"""Training methods of the papers (sparse optimizers and splitting schemes) behind one protocol."""

from compress.optim.method import METHODS, TrainingMethod, create_method, list_methods

__all__ = ["METHODS", "TrainingMethod", "create_method", "list_methods"]
