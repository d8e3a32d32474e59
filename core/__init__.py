"""Vision Platform domain logic. Never imports Qt or an ML framework at module level."""
