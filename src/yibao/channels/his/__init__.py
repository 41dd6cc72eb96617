"""The national platform's interface for designated institutions' HIS."""

from yibao.channels.his.routes import ROUTES

__all__ = ["ROUTES"]
