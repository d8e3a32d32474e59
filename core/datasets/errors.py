"""The one exception the datasets layer raises for bad user data."""

from __future__ import annotations


class DatasetError(ValueError):
    """A dataset (or one of its files) cannot be used. The message always names the path and the problem."""
