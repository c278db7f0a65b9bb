"""The real server: ``gpuguard webhook`` as a subprocess, AdmissionReviews over TLS verified against a test CA."""

from __future__ import annotations

import base64
import concurrent.futures
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from cryptography import x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.webhook.certs import CertAuthority
from tests.webhook.conftest import GPUGUARD, Webhook, free_port, start, stop

NVD = "NVIDIA_VISIBLE_DEVICES"


def admission_review(obj: Any, uid: str = "uid-1", **request: Any) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "operation": "CREATE",
            "namespace": "team",
            "object": obj,
            "userInfo": {"username": "alice"},
            **request,
        },
    }


def pod(*containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    spec = {"containers": list(containers), **spec}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}


CUDA = {"name": "app", "image": "nvidia/cuda:12.4.0-base-ubuntu22.04"}
DEV_NVIDIA0 = pod(
    {"name": "app", "image": "busybox", "volumeMounts": [{"name": "d", "mountPath": "/dev/nvidia0"}]},
    volumes=[{"name": "d", "hostPath": {"path": "/dev/nvidia0"}}],
)


def post(client: httpx.Client, path: str, doc: Any) -> dict[str, Any]:
    r = client.post(path, content=orjson.dumps(doc), headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["apiVersion"] == "admission.k8s.io/v1" and body["kind"] == "AdmissionReview"
    return body["response"]  # type: ignore[no-any-return]


def test_cuda_pod_is_patched_to_void(shared_webhook: Webhook) -> None:
    response = post(shared_webhook.client(), "/mutate", admission_review(pod(CUDA), uid="abc"))
    assert response["uid"] == "abc" and response["allowed"] is True
    assert response["patchType"] == "JSONPatch"
    ops = orjson.loads(base64.b64decode(response["patch"]))
    assert ops == [{"op": "add", "path": "/spec/containers/0/env", "value": [{"name": NVD, "value": "void"}]}]


def test_dev_nvidia0_is_denied_naming_gg103_and_the_fix(shared_webhook: Webhook) -> None:
    response = post(shared_webhook.client(), "/validate", admission_review(DEV_NVIDIA0))
    assert response["allowed"] is False
    assert response["status"]["code"] == 403
    assert "GG103" in response["status"]["message"] and "Remove the hostPath volume" in response["status"]["message"]


def test_validate_does_not_patch_and_mutate_does_not_deny(shared_webhook: Webhook) -> None:
    client = shared_webhook.client()
    assert "patch" not in post(client, "/validate", admission_review(pod(CUDA)))
    assert post(client, "/mutate", admission_review(DEV_NVIDIA0))["allowed"] is True


def test_warnings_and_dry_run(shared_webhook: Webhook) -> None:
    privileged = pod({"name": "app", "image": "busybox", "securityContext": {"privileged": True}})
    response = post(shared_webhook.client(), "/validate", admission_review(privileged, dryRun=True))
    assert response["allowed"] is True
    assert response["warnings"] and response["warnings"][0].startswith("[GG104]")


def test_health_ready_and_unknown_paths(shared_webhook: Webhook) -> None:
    client = shared_webhook.client()
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/nope").status_code == 404
    assert client.get("/validate").status_code == 405


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty body"),
        (b"{not json", "not JSON"),
        (b"[1, 2]", "expected an AdmissionReview"),
        (b'{"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1"}', "request"),
        (b'{"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": {"kind": 1}}', "uid"),
        (b"\xff\xfe\x00", "not JSON"),
        (b"[" * 5000 + b"]" * 5000, "not JSON"),
    ],
    ids=["empty", "broken", "list", "no-request", "no-uid", "binary", "deep"],
)
def test_malformed_bodies_get_400_with_a_reason(shared_webhook: Webhook, body: bytes, reason: str) -> None:
    client = shared_webhook.client()
    r = client.post("/validate", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert reason in r.json()["error"]
    assert client.get("/healthz").status_code == 200  # still serving


def test_malformed_object_with_uid_is_denied_with_the_field(shared_webhook: Webhook) -> None:
    bad = pod({"name": "app", "env": [{"name": NVD, "value": 7}]})
    response = post(shared_webhook.client(), "/validate", admission_review(bad))
    assert response["allowed"] is False and response["status"]["code"] == 400
    assert "spec.containers[0].env[0].value" in response["status"]["message"]


def test_oversize_body_gets_413(shared_webhook: Webhook) -> None:
    client = shared_webhook.client()
    big = admission_review(pod(CUDA), padding="x" * (3 * 1024 * 1024 + 10))
    r = client.post("/validate", content=orjson.dumps(big))
    assert r.status_code == 413
    assert "limit" in r.json()["error"]
    assert shared_webhook.client().get("/healthz").status_code == 200


def test_oversize_chunked_body_gets_413(shared_webhook: Webhook) -> None:
    def chunks() -> Any:
        for _ in range(40):
            yield b" " * (100 * 1024)

    r = shared_webhook.client().post("/validate", content=chunks())
    assert r.status_code == 413


def test_large_pod_under_the_limit_is_reviewed(shared_webhook: Webhook) -> None:
    env = [{"name": "A", "value": "x" * 100}]
    containers = [{"name": f"c{i}", "image": "busybox", "env": env} for i in range(2000)]
    response = post(shared_webhook.client(), "/mutate", admission_review(pod(*containers)))
    assert len(orjson.loads(base64.b64decode(response["patch"]))) == 2000


def test_concurrent_clients(shared_webhook: Webhook) -> None:
    def one(i: int) -> tuple[str, bool]:
        with httpx.Client(base_url=shared_webhook.url, verify=shared_webhook.ssl_context(), timeout=15) as client:
            out = []
            for j in range(10):
                doc = DEV_NVIDIA0 if (i + j) % 2 else pod(CUDA)
                response = post(client, "/validate" if (i + j) % 2 else "/mutate", admission_review(doc, f"u{i}-{j}"))
                out.append((response["uid"], response["allowed"]))
            return out[-1]

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(32)))
    assert len(results) == 32


def test_slow_client_does_not_block_others(shared_webhook: Webhook) -> None:
    """A client that sends half a body and stalls holds only its own connection."""
    host, port = "localhost", int(shared_webhook.url.rsplit(":", 1)[1])
    raw = socket.create_connection((host, port))
    tls = shared_webhook.ssl_context().wrap_socket(raw, server_hostname=host)
    try:
        tls.sendall(b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"kind\":")
        response = post(shared_webhook.client(), "/validate", admission_review(pod(CUDA)))
        assert response["allowed"] is True
    finally:
        tls.close()


def test_metrics(shared_webhook: Webhook) -> None:
    client = shared_webhook.client()
    post(client, "/validate", admission_review(DEV_NVIDIA0))
    post(client, "/mutate", admission_review(pod(CUDA), dryRun=True))
    text = client.get("/metrics").text
    assert 'gpuguard_webhook_requests_total{code="200",endpoint="/validate"}' in text
    assert 'gpuguard_webhook_decisions_total{dry_run="false",mode="enforce",rule="GG103"}' in text
    assert 'gpuguard_webhook_verdicts_total{dry_run="true",endpoint="/mutate",outcome="patched"}' in text
    assert "gpuguard_webhook_request_duration_seconds_bucket" in text
    assert 'gpuguard_webhook_image_cache_total{result="hit"}' in text


def _served_serial(hook: Webhook) -> int:
    port = int(hook.url.rsplit(":", 1)[1])
    ctx = hook.ssl_context()
    with socket.create_connection(("127.0.0.1", port)) as raw, ctx.wrap_socket(raw, server_hostname="localhost") as s:
        der = s.getpeercert(binary_form=True)
    assert der is not None
    return int(x509.load_der_x509_certificate(der).serial_number)


def test_certificate_rotation_while_serving(webhook: Webhook) -> None:
    client = webhook.client()  # a keep-alive connection opened on the old certificate
    assert post(client, "/mutate", admission_review(pod(CUDA)))["allowed"]
    first = _served_serial(webhook)
    serial = webhook.ca.issue(webhook.cert, webhook.key)
    assert serial != first
    webhook.wait_for(lambda: _served_serial(webhook) == serial, "the new certificate to be served")
    assert post(client, "/mutate", admission_review(pod(CUDA)))["allowed"]  # the old connection still works
    assert post(webhook.client(), "/validate", admission_review(DEV_NVIDIA0))["allowed"] is False
    assert 'gpuguard_webhook_reloads_total{result="ok",what="tls"}' in webhook.client().get("/metrics").text


def test_certificate_rotation_with_a_broken_pair_keeps_serving(webhook: Webhook) -> None:
    first = _served_serial(webhook)
    webhook.cert.write_text("not a certificate")
    webhook.wait_for(lambda: "does not load yet" in webhook.stderr(), "the bad certificate to be noticed")
    assert _served_serial(webhook) == first
    serial = webhook.ca.issue(webhook.cert, webhook.key)
    webhook.wait_for(lambda: _served_serial(webhook) == serial, "the good certificate to be served")


def test_config_reload_and_bad_config_kept_out(webhook: Webhook) -> None:
    client = webhook.client()
    assert post(client, "/validate", admission_review(DEV_NVIDIA0))["allowed"] is False
    webhook.config.write_text("modes:\n  GG103: warn\n")
    webhook.wait_for(lambda: post(client, "/validate", admission_review(DEV_NVIDIA0))["allowed"] is True,
                     "the new config to apply")  # fmt: skip
    webhook.config.write_text("modes:\n  GG103: sometimes\n")
    webhook.wait_for(lambda: "modes.GG103: expected one of enforce, warn, audit, off" in webhook.stderr(),
                     "the bad config to be reported")  # fmt: skip
    response = post(client, "/validate", admission_review(DEV_NVIDIA0))
    assert response["allowed"] is True and response["warnings"][0].startswith("[GG103]")  # the old config serves


def test_bad_config_on_start_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("modes:\n  GG103: sometimes\n")
    cert = tmp_path / "c.pem"
    key = tmp_path / "k.pem"
    CertAuthority(tmp_path).issue(cert, key)
    r = subprocess.run([GPUGUARD, "webhook", "--tls-cert", str(cert), "--tls-key", str(key), "--config", str(config)],
                       check=False, capture_output=True, text=True, timeout=30)  # fmt: skip
    assert r.returncode == 2
    assert "modes.GG103: expected one of enforce, warn, audit, off" in r.stderr


def test_tls_is_required() -> None:
    r = subprocess.run([GPUGUARD, "webhook"], check=False, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "--tls-cert" in r.stderr


def test_insecure_http_warns_loudly(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "log"
    with log.open("wb") as out:
        proc = subprocess.Popen([GPUGUARD, "webhook", "--insecure-http", "--host", "127.0.0.1", "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
        assert r.status_code == 200
        assert "PLAIN HTTP" in log.read_text() and "NEVER use it in a cluster" in log.read_text()
    finally:
        proc.terminate()
        proc.wait(10)


def test_plain_http_on_the_tls_port_is_refused(shared_webhook: Webhook) -> None:
    with pytest.raises(httpx.HTTPError):
        httpx.get(shared_webhook.url.replace("https://", "http://") + "/healthz", timeout=5)
    assert shared_webhook.client().get("/healthz").status_code == 200


def test_start_and_stop_helpers_are_reusable(tmp_path: Path) -> None:
    hook = start(tmp_path, "modes:\n  GG103: audit\n")
    try:
        response = post(hook.client(), "/validate", admission_review(DEV_NVIDIA0))
        assert response["allowed"] is True and "gg103" in response["auditAnnotations"]
    finally:
        stop(hook)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(
    st.binary(max_size=64),
    json_values.map(orjson.dumps),
    json_values.map(lambda obj: orjson.dumps(admission_review(obj))),
    st.dictionaries(st.sampled_from(["uid", "kind", "operation", "object", "subResource", "namespace"]), json_values)
    .map(lambda req: orjson.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req})),
))  # fmt: skip
def test_fuzzed_bodies_get_200_or_400_and_the_server_lives(shared_webhook: Webhook, body: bytes) -> None:
    r = shared_webhook.client().post("/validate", content=body)
    assert r.status_code in (200, 400), r.text
    if r.status_code == 200:
        response = r.json()["response"]
        assert response.get("status", {}).get("code") != 500, response
