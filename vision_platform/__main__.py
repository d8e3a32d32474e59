from __future__ import annotations

from vision_platform.launcher import main

raise SystemExit(main())
