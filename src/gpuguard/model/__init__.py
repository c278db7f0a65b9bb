"""Model objects: plain, immutable data shared by sources, engine, rules and formats.

Nothing here does I/O or decides anything; sources build these objects and
the engine reads them.
"""
