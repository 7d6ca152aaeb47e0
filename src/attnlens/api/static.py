"""Serving the frontend: static pages from `frontend/static`, and plotly.js from the Python `plotly`
package (no npm, no CDN: works offline)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from attnlens.config import Settings

# src/attnlens/api/static.py -> the source tree's root (also /app in the Docker image).
SOURCE_ROOT = Path(__file__).resolve().parents[3]


def frontend_dir(settings: Settings) -> Path:
    return settings.api.frontend_dir or SOURCE_ROOT / "frontend" / "static"


def plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def mount_frontend(app: FastAPI, settings: Settings) -> None:
    """`/vendor/plotly.min.js` and the pages at `/` (mounted last, after the API routes)."""

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def read_plotly() -> FileResponse:
        return FileResponse(
            plotly_js(), media_type="text/javascript", headers={"Cache-Control": "max-age=86400"}
        )

    folder = frontend_dir(settings)
    if folder.is_dir():
        app.mount("/", StaticFiles(directory=folder, html=True), name="frontend")
