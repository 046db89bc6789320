"""The offline ElevenLabs-compatible engine: a FastAPI app over open-source speech engines.

Run it standalone with ``prefect-elevenlabs local serve`` or in-process with
``ElevenLabsCredentials(base_url="local")``.
"""

from .app import create_app
from .config import EngineConfig
from .server import serve, start_embedded, start_in_thread

__all__ = ["EngineConfig", "create_app", "serve", "start_embedded", "start_in_thread"]
