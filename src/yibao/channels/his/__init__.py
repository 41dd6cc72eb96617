"""The national platform's interface for designated institutions' HIS."""

from yibao.channels.his.routes import ROUTES, front

__all__ = ["ROUTES", "front"]
