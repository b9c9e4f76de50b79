"""Session over a torch ``nn.Module`` or a TorchScript file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deploy.runtimes.errors import SessionError
from deploy.runtimes.session import Session, ordered_inputs


class TorchSession(Session):
    """Runs an ``nn.Module`` (or ``torch.jit.load``-ed file) in eval mode without gradients."""

    kind = "torch"

    def __init__(self, artifact, *, device: str = "cpu", input_names: list[str] | None = None) -> None:
        import torch

        super().__init__(device=device)
        if isinstance(artifact, (str, Path)):
            if not Path(artifact).is_file():
                raise SessionError(f"TorchScript file not found: {artifact}")
            artifact = torch.jit.load(str(artifact), map_location=device)
        if not isinstance(artifact, torch.nn.Module):
            raise SessionError(f"torch artifact must be an nn.Module or a TorchScript path, "
                               f"got {type(artifact).__name__}")
        self._module = artifact.to(device).eval()
        self._input_names = input_names

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        import torch

        inputs = [torch.from_numpy(array).to(self.device) for array in ordered_inputs(feeds, self._input_names)]
        with torch.no_grad():
            outputs = self._module(*inputs)
        if isinstance(outputs, torch.Tensor):
            outputs = (outputs,)
        return [output.detach().cpu().numpy() for output in outputs]
