"""engine/operator."""
