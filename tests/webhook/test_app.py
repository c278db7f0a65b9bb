"""The ASGI app without a socket: timeouts per failurePolicy, body limits, reload safety."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from gpuguard.admission.policy import Policy
from gpuguard.admission.review import Response, Reviewer
from gpuguard.model.admission import AdmissionConfig
from gpuguard.webhook.app import INLINE_BYTES, State, WebhookApp
from gpuguard.webhook.metrics import Metrics


class SlowReviewer(Reviewer):
    """Stands in for an image lookup that hangs."""

    def review(self, request: object, *, mutate: bool = True, validate: bool = True) -> Response:
        time.sleep(3)
        return super().review(request, mutate=mutate, validate=validate)


def call(app: WebhookApp, path: str, body: bytes, method: str = "POST") -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)] or [b""]

    async def receive() -> dict[str, Any]:
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "path": path, "method": method, "headers": [(b"content-length", str(len(body)).encode())]}
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    return sent[0]["status"], sent[1]["body"]


def big_review() -> bytes:
    containers = [{"name": f"c{i}", "image": "busybox", "env": [{"name": "A", "value": "x" * 200}]} for i in range(400)]
    doc = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
           "request": {"uid": "slow", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE",
                       "namespace": "t", "object": {"metadata": {"name": "p"}, "spec": {"containers": containers}}}}
    body = orjson.dumps(doc)  # fmt: skip
    assert len(body) > INLINE_BYTES
    return body


def test_timeout_fails_closed_with_failure_policy_fail() -> None:
    config = AdmissionConfig(timeout_seconds=1.0, failure_policy="Fail")
    app = WebhookApp(State(SlowReviewer(Policy(config))), Metrics())
    start = time.monotonic()
    status, body = call(app, "/validate", big_review())
    assert time.monotonic() - start < 2.0
    response = orjson.loads(body)["response"]
    assert status == 200 and response["uid"] == "slow" and response["allowed"] is False
    assert "ran out of time" in response["status"]["message"]


def test_timeout_allows_with_a_warning_with_failure_policy_ignore() -> None:
    config = AdmissionConfig(timeout_seconds=1.0, failure_policy="Ignore")
    app = WebhookApp(State(SlowReviewer(Policy(config))), Metrics())
    _status, body = call(app, "/mutate", big_review())
    response = orjson.loads(body)["response"]
    assert response["allowed"] is True and "ran out of time" in response["warnings"][0]


def test_body_limit_from_config() -> None:
    app = WebhookApp(State(Reviewer(Policy(AdmissionConfig(max_body_bytes=2048)))), Metrics())
    status, body = call(app, "/validate", big_review())
    assert status == 413 and b"2048" in body


def test_large_body_reviewed_off_the_loop() -> None:
    app = WebhookApp(State(Reviewer(Policy(AdmissionConfig()))), Metrics())
    status, body = call(app, "/mutate", big_review())
    assert status == 200 and orjson.loads(body)["response"]["patchType"] == "JSONPatch"
