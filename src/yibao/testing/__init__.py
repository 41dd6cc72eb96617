"""Helpers for the test suite and the benchmarks (no test runner needed)."""
