"""Rules: each a small unit with a stable id that turns engine decisions into findings."""
