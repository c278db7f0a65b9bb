"""Sources on a GPU node: containerd, the kubelet's pod-resources API, ``/proc`` and the toolkit's logs."""

from gpuguard.sources.node.errors import NodeSourceError

__all__ = ["NodeSourceError"]
