"""Reusable widgets (each takes a model and reacts to its signals)."""
