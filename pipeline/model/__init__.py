"""The model a run works on: the bundle passed between stages, the importers of user model files
(checkpoints, TorchScript, ``torch.export`` archives, ONNX) and the limits on a model's input."""
