"""Audit: read inputs, build the node profile, run the engine and the rules, collect a report."""
