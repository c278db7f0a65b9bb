"""Write the audit's PolicyReports into the cluster, so Policy Reporter and Kyverno's UI show them.

The objects are exactly those ``--format policyreport`` prints (one ``PolicyReport`` named ``gpuguard``
per namespace with results, one ``ClusterPolicyReport``), labelled ``app.kubernetes.io/managed-by:
gpuguard``.  Each is created, or replaced when it exists (409 -> GET its ``resourceVersion`` -> PUT, again
when a concurrent writer wins).  Then gpuguard's own reports that this run no longer produces (a namespace
that is clean now) are deleted: only those the label selector lists, so other tools' reports are never
touched.  Writes come first, so a run that cannot write deletes nothing.

Every refusal (403, a CRD not installed, 429 past its retries) is one line in :attr:`Published.errors`,
never an exception; 429 waits for ``Retry-After`` as the cluster reader does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from gpuguard.formats.policyreport import LABELS, policy_reports
from gpuguard.model.report import Report
from gpuguard.sources.cluster.calls import MAX_RETRIES, Refused, send
from gpuguard.sources.cluster.reader import TIMEOUT

GROUP = "wgpolicyk8s.io"
VERSION = "v1alpha2"
NAMESPACED = "policyreports"
CLUSTER = "clusterpolicyreports"
SELECTOR = ",".join(f"{k}={v}" for k, v in LABELS.items())
_CONFLICT_TRIES = 3  # PUTs that lose to a concurrent writer before giving up on one report


@dataclass
class Published:
    """What one run did in the cluster, and the lines for what it could not do."""

    created: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: int = 0
    retries: int = 0

    def summary(self) -> str:
        return (f"policy reports: {len(self.created)} created, {len(self.replaced)} replaced, "
                f"{len(self.deleted)} deleted" + (f", {len(self.errors)} failed" if self.errors else ""))


class PolicyReportWriter:
    """Creates, replaces and prunes gpuguard's reports through ``CustomObjectsApi``."""

    def __init__(
        self, api: Any, *, namespace: str | None = None, sleep: Callable[[float], None] = time.sleep,
        max_retries: int = MAX_RETRIES, timeout: tuple[float, float] = TIMEOUT,
        labels: Mapping[str, str] = LABELS, name: str | None = None,
    ) -> None:
        from kubernetes import client  # noqa: PLC0415 - lazy: heavy import

        self._custom = client.CustomObjectsApi(api)
        self.namespace = namespace  # an audit of one namespace prunes only there
        # Whose reports these are: the writer labels what it writes with ``labels`` and prunes only reports that
        # carry them (and, with ``name``, only reports of that name; every report it writes is renamed to it).
        self.labels = dict(labels)
        self.selector = ",".join(f"{k}={v}" for k, v in self.labels.items())
        self.name = name
        self._sleep = sleep
        self._max_retries = max_retries
        self._timeout = timeout
        self.result = Published()
        self._missing = False  # the server does not serve the group (CRDs not installed): stop at once

    def documents(self, report: Report, *, now: int | None = None) -> list[dict[str, Any]]:
        """The objects ``--format policyreport`` prints, with this writer's labels (and name)."""
        docs = policy_reports(report, now=now)
        for doc in docs:
            doc["metadata"]["labels"] = dict(self.labels)
            if self.name is not None:
                doc["metadata"]["name"] = self.name
        return docs

    def publish(self, report: Report) -> Published:
        self.result = Published()
        docs = self.documents(report)
        written: set[tuple[str, str, str]] = set()
        for doc in docs:
            plural = CLUSTER if doc["kind"] == "ClusterPolicyReport" else NAMESPACED
            meta = doc["metadata"]
            if self.write(plural, meta.get("namespace"), doc):
                written.add((plural, meta.get("namespace") or "", meta["name"]))
        for plural in (NAMESPACED, CLUSTER):
            if not self._missing:
                self._prune(plural, {(ns, name) for p, ns, name in written if p == plural}, docs)
        return self.result

    # -- create or replace, prune --------------------------------------------------------------------------

    def write(self, plural: str, namespace: str | None, doc: dict[str, Any]) -> bool:
        name = doc["metadata"]["name"]
        what = _what(plural, namespace, name)
        if self._missing:
            return False
        try:
            self.call(self._create, plural, namespace, doc)
            self.result.created.append(what)
            return True
        except Refused as exc:
            if exc.status != 409:
                self._fail(plural, what, "create", exc)
                return False
        for _ in range(_CONFLICT_TRIES):
            try:
                current = self.call(self._get, plural, namespace, name)
                body = {**doc, "metadata": {**doc["metadata"],
                                            "resourceVersion": (current.get("metadata") or {}).get("resourceVersion")}}
                self.call(self._replace, plural, namespace, name, body)
                self.result.replaced.append(what)
                return True
            except Refused as exc:
                if exc.status != 409:
                    self._fail(plural, what, "replace", exc)
                    return False
        self.result.errors.append(f"{what}: replace: still conflicting after {_CONFLICT_TRIES} tries")
        return False

    def _prune(self, plural: str, keep: set[tuple[str, str]], docs: list[dict[str, Any]]) -> None:
        try:
            listed = self.call(self._list, plural)
        except Refused as exc:
            self._fail(plural, f"{plural} ({self.selector})", "list", exc)
            return
        produced = {(d["metadata"].get("namespace") or "", d["metadata"]["name"]) for d in docs}
        for item in listed.get("items") or ():
            meta = item.get("metadata") or {} if isinstance(item, dict) else {}
            labels = meta.get("labels") or {}
            key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
            if any(labels.get(k) != v for k, v in self.labels.items()) or self.name not in (None, key[1]):
                continue  # the server ignored the selector: never touch another tool's (or node's) report
            if key in keep or key in produced:  # produced but not written: its error is already reported
                continue
            if plural == NAMESPACED and self.namespace is not None and key[0] != self.namespace:
                continue  # this run judged one namespace only
            what = _what(plural, key[0] or None, key[1])
            try:
                self.call(self._delete, plural, key[0] or None, key[1])
                self.result.deleted.append(what)
            except Refused as exc:
                if exc.status != 404:  # already gone
                    self._fail(plural, what, "delete", exc)

    def _fail(self, plural: str, what: str, verb: str, exc: Refused) -> None:
        if exc.status == 404 and "could not find the requested resource" in exc.text:
            if not self._missing:
                self._missing = True
                self.result.errors.append(f"{GROUP}/{VERSION}: not served by the API server (are the PolicyReport "
                                          "CRDs installed?): no reports written")
            return
        self.result.errors.append(f"{what}: {verb}: {exc.text}")

    # -- the API calls ------------------------------------------------------------------------------------

    def _create(self, plural: str, namespace: str | None, body: dict[str, Any], **kw: Any) -> Any:
        if namespace is None:
            return self._custom.create_cluster_custom_object(GROUP, VERSION, plural, body, **kw)
        return self._custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body, **kw)

    def _get(self, plural: str, namespace: str | None, name: str, **kw: Any) -> Any:
        if namespace is None:
            return self._custom.get_cluster_custom_object(GROUP, VERSION, plural, name, **kw)
        return self._custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name, **kw)

    def _replace(self, plural: str, namespace: str | None, name: str, body: dict[str, Any], **kw: Any) -> Any:
        if namespace is None:
            return self._custom.replace_cluster_custom_object(GROUP, VERSION, plural, name, body, **kw)
        return self._custom.replace_namespaced_custom_object(GROUP, VERSION, namespace, plural, name, body, **kw)

    def _delete(self, plural: str, namespace: str | None, name: str, **kw: Any) -> Any:
        if namespace is None:
            return self._custom.delete_cluster_custom_object(GROUP, VERSION, plural, name, **kw)
        return self._custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, plural, name, **kw)

    def _list(self, plural: str, **kw: Any) -> Any:
        if plural == NAMESPACED and self.namespace is not None:
            return self._custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, plural,
                                                              label_selector=self.selector, **kw)
        return self._custom.list_cluster_custom_object(GROUP, VERSION, plural, label_selector=self.selector, **kw)

    def call(self, method: Callable[..., Any], *args: Any) -> dict[str, Any]:
        """One request, its JSON answer back (``{}`` when empty); a refusal raises ``Refused``."""

        def request(**kw: Any) -> Any:
            return method(*args, **kw)

        data = send(request, {"_preload_content": False, "_request_timeout": self._timeout},
                    max_retries=self._max_retries, sleep=self._sleep, counts=self.result)
        try:
            body = orjson.loads(data) if data else {}
        except orjson.JSONDecodeError:
            raise Refused(0, "the API server's answer is not JSON") from None
        return body if isinstance(body, dict) else {}


def _what(plural: str, namespace: str | None, name: str) -> str:
    kind = "ClusterPolicyReport" if plural == CLUSTER else "PolicyReport"
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def publish_policy_reports(report: Report, api: Any, **options: Any) -> Published:
    """Write ``report`` as PolicyReports through ``api`` (a ``kubernetes`` ApiClient); see the module docstring."""
    return PolicyReportWriter(api, **options).publish(report)


__all__ = ["CLUSTER", "GROUP", "NAMESPACED", "SELECTOR", "VERSION", "PolicyReportWriter", "Published", "Refused",
           "publish_policy_reports"]
