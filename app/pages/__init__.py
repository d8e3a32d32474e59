"""The main window's pages (one per step of a project: data, configure, jobs, inference)."""
