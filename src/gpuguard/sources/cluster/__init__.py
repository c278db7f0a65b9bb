"""A live cluster as a source: the Kubernetes API, read with ``get``/``list`` only.

:mod:`.reader` lists pods, nodes, the GPU Operator's ClusterPolicy, NVIDIADriver
objects and rendered DaemonSets, RuntimeClasses, ConfigMaps and the admission
configuration (webhooks, ValidatingAdmissionPolicies, Kyverno, Gatekeeper) through the official
``kubernetes`` client (paginated, 429 Retry-After honoured, per-request
timeouts) and turns them into the same model objects the file sources give.
"""

from gpuguard.sources.cluster.reader import (
    OPERATOR_DAEMONSETS,
    ClusterReader,
    ConnectOptions,
    DaemonSetEnv,
    NodeFacts,
    connect,
)

__all__ = ["OPERATOR_DAEMONSETS", "ClusterReader", "ConnectOptions", "DaemonSetEnv", "NodeFacts", "connect"]
