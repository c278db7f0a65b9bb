"""PolicyReports of one node (``gpuguard agent --policy-reports``), written with ``publish.policyreports``.

Every GPU node runs an agent, so each writes its own reports: ``gpuguard-agent-<node>`` in each
namespace with findings on that node, and one ``ClusterPolicyReport`` of that name (degraded sources,
containers without Kubernetes names).  They are labelled ``app.kubernetes.io/managed-by:
gpuguard-agent`` and ``gpuguard.io/node``, so an agent prunes only its own node's reports and
``gpuguard audit --policy-reports`` (which prunes ``managed-by: gpuguard``) never touches them.  A scan
whose results are those already written is not written again.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import re
from typing import Any

import orjson

from gpuguard.agent.scan import Scan
from gpuguard.formats.policyreport import policy_reports
from gpuguard.model.report import Report
from gpuguard.publish.policyreports import (
    CLUSTER,
    GROUP,
    NAMESPACED,
    VERSION,
    PolicyReportWriter,
    Published,
    Refused,
)

MANAGED_BY = "gpuguard-agent"
NODE_LABEL = "gpuguard.io/node"
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")


def node_label(node: str) -> str:
    """The node's name as a label value (<= 63 characters), or a digest of it when it does not fit."""
    if _LABEL_VALUE.match(node):
        return node
    return "sha256-" + hashlib.sha256(node.encode()).hexdigest()[:40]


class NodeReportWriter(PolicyReportWriter):
    """``PolicyReportWriter`` for one node's reports: its own names, labels and pruning."""

    def __init__(self, api: Any, node: str, **options: Any) -> None:
        super().__init__(api, **options)
        self.node = node
        self.name = f"gpuguard-agent-{node}"[:253]
        self.labels = {"app.kubernetes.io/managed-by": MANAGED_BY, NODE_LABEL: node_label(node)}
        self.selector = ",".join(f"{k}={v}" for k, v in self.labels.items())

    def documents(self, report: Report, *, now: int | None = None) -> list[dict[str, Any]]:
        docs = []
        for doc in policy_reports(report, now=now):
            mine = copy.deepcopy(doc)
            mine["metadata"]["name"] = self.name
            mine["metadata"]["labels"] = dict(self.labels)
            docs.append(mine)
        return docs

    def publish(self, report: Report) -> Published:
        self.result = Published()
        docs = self.documents(report)
        written: set[tuple[str, str]] = set()
        for doc in docs:
            plural = CLUSTER if doc["kind"] == "ClusterPolicyReport" else NAMESPACED
            namespace = doc["metadata"].get("namespace")
            if self.write(plural, namespace, doc):
                written.add((plural, namespace or ""))
        if not self._missing:
            for plural in (NAMESPACED, CLUSTER):
                self._prune_node(plural, {ns for p, ns in written if p == plural},
                                 {d["metadata"].get("namespace") or "" for d in docs})
        return self.result

    def _prune_node(self, plural: str, written: set[str], produced: set[str]) -> None:
        """Delete this node's reports of namespaces that have no finding on it any more."""
        listing = functools.partial(self._custom.list_cluster_custom_object, GROUP, VERSION, plural,
                                    label_selector=self.selector)
        try:
            listed = self.call(listing)
        except Refused as exc:
            self._fail(plural, f"{plural} ({self.selector})", "list", exc)
            return
        for item in listed.get("items") or ():
            meta = item.get("metadata") or {} if isinstance(item, dict) else {}
            labels = meta.get("labels") or {}
            if any(labels.get(k) != v for k, v in self.labels.items()) or meta.get("name") != self.name:
                continue  # the server ignored the selector: never touch another node's or tool's report
            namespace = str(meta.get("namespace") or "")
            if namespace in written or namespace in produced:
                continue
            try:
                self.call(self._delete, plural, namespace or None, self.name)
                self.result.deleted.append(f"{plural} {namespace}/{self.name}" if namespace else self.name)
            except Refused as exc:
                if exc.status != 404:  # already gone
                    self._fail(plural, f"{plural} {namespace}/{self.name}", "delete", exc)


class NodePolicyReports:
    """The loop's publisher: writes when the results changed (or the last write failed)."""

    def __init__(self, api: Any, node: str) -> None:
        self.writer = NodeReportWriter(api, node)
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
