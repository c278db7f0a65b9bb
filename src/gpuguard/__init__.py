"""gpuguard: keep Kubernetes GPU nodes honest.

A container that did not ask for a GPU must not get one, and a container that
asked for one must get exactly what it was allocated.
"""

__version__ = "0.1.0"
