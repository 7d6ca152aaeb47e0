"""The HTTP API (FastAPI). Never imports torch: model calls go through a `WorkerClient`."""

from attnlens.api.app import create_app

__all__ = ["create_app"]
