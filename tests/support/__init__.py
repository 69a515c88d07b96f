"""Servers and helpers used by the tests and the demo."""
