"""ASGI entry point for multi-worker servers: ``uvicorn yibao.asgi:app``."""

from yibao.app import create_app

app = create_app()
