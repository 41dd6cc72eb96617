"""yibao: the medical insurance card service of a city's medical insurance bureau."""

__version__ = "0.1.0"
