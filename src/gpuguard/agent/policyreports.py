"""PolicyReports of one node (``gpuguard agent --policy-reports``), written with ``publish.policyreports``.

Every GPU node runs an agent, so each writes its own reports: ``gpuguard-agent-<node>`` in each
namespace with findings on that node, and one ``ClusterPolicyReport`` of that name (degraded sources,
containers without Kubernetes names).  They are labelled ``app.kubernetes.io/managed-by:
gpuguard-agent`` and ``gpuguard.io/node``, so an agent prunes only its own node's reports and
``gpuguard audit --policy-reports`` (which prunes ``managed-by: gpuguard``) never touches them.  A scan
whose results are those already written is not written again.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson

from gpuguard.agent.scan import Scan
from gpuguard.publish.policyreports import PolicyReportWriter

MANAGED_BY = "gpuguard-agent"
NODE_LABEL = "gpuguard.io/node"
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")


def node_label(node: str) -> str:
    """The node's name as a label value (<= 63 characters), or a digest of it when it does not fit."""
    if _LABEL_VALUE.match(node):
        return node
    return "sha256-" + hashlib.sha256(node.encode()).hexdigest()[:40]


def node_report_writer(api: Any, node: str) -> PolicyReportWriter:
    """The writer of one node's reports: its own name and labels, so it prunes only that node's reports."""
    labels = {"app.kubernetes.io/managed-by": MANAGED_BY, NODE_LABEL: node_label(node)}
    return PolicyReportWriter(api, labels=labels, name=f"gpuguard-agent-{node}"[:253])


class NodePolicyReports:
    """The loop's publisher: writes when the results changed (or the last write failed)."""

    def __init__(self, api: Any, node: str) -> None:
        self.writer = node_report_writer(api, node)
        self._written: bytes | None = None

    def __call__(self, scan: Scan) -> str | None:
        key = orjson.dumps(self.writer.documents(scan.report, now=0))
        if key == self._written:
            return None
        published = self.writer.publish(scan.report)
        if published.errors:
            self._written = None
            return "; ".join(published.errors[:3]) + (f" (and {len(published.errors) - 3} more)"
                                                      if len(published.errors) > 3 else "")
        self._written = key
        return None
