"""Output formats: turn decisions (and later findings) into text for people and machines.

Formatters only read model objects; they never reach back into sources.
"""
