"""The PySide6 desktop app. Never imports an ML framework: heavy work runs in subprocesses."""
