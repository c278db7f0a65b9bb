"""Lexers for the file formats gpuguard reads and edits: pure text in, instructions out."""
