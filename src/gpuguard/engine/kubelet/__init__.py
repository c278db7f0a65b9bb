"""engine/kubelet."""
