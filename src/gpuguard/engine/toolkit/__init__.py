"""engine/toolkit."""
