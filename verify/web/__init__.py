"""The HTTP front door: verification page, upload page and JSON API (``esign serve``)."""

from .app import create_app
from .config import ServerConfig, load_config

__all__ = ["ServerConfig", "create_app", "load_config"]
