"""Fixers: remedies for findings, fitted to the node profile. They read findings, never sources."""
