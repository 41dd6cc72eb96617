"""Use cases: the only door the channels use. One transaction per use case."""
