"""Loads the test network guard in every Python subprocess a test starts (see vp_netguard.py)."""

import os

if os.environ.get("VP_NETGUARD_LOG"):
    import vp_netguard

    vp_netguard.install()
