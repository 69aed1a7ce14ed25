"""Application factory for multi-worker uvicorn: each worker builds its app from the environment."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI

from .app import create_app
from .config import load_config


def app_from_env() -> FastAPI:
    path = os.environ.get("ESIGN_SERVE_CONFIG")
    return create_app(load_config(Path(path) if path else None))
