"""One load / run interface for torch, onnxruntime and the TVM VM (local or over TVM RPC).

``load_session(kind, artifact, device=...)`` returns a :class:`Session`; ``session.run(feeds)``
returns the outputs as numpy arrays. Back-ends are imported when a session is loaded.
"""

from deploy.runtimes.errors import SessionError
from deploy.runtimes.loader import RUNTIME_KINDS, load_session
from deploy.runtimes.session import Session

__all__ = ["RUNTIME_KINDS", "Session", "SessionError", "load_session"]
