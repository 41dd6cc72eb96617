"""Running yibao for a city: the tools an operator starts from ``yibao`` or ``make``."""
