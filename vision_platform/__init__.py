"""Entry point package: dispatches `vision-platform` sub-commands to the GUI, the CLI or a worker.

It sits outside the layered packages (app → core ← adapters) on purpose: the one executable must
start the GUI (app), run headless commands (core) and run training workers (adapters), and only
this dispatcher may know all three.
"""
