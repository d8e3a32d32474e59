"""The reliability matrix as tests: which test covers which row, their outcomes, docs/reliability.md."""
