"""HTTP behaviour the real-registry tests cannot provoke: where Authorization goes, Retry-After,
identity tokens, TLS verification, deadlines, and that no secret reaches a reason or a log."""

from __future__ import annotations

import base64
import logging
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gpuguard.sources.images.client import MAX_TRIES
from gpuguard.sources.images.resolver import ResolveOptions, resolve_images
from tests.images.unit import imagekit as kit
from tests.images.unit.fakeserver import FakeRegistry, Storage

SECRET = "hunter2-Secret-Value"


@pytest.fixture
def servers() -> Iterator[list[FakeRegistry]]:
    started: list[FakeRegistry] = []
    yield started
    for server in started:
        server.close()


def _start(servers: list[FakeRegistry], **kw: Any) -> FakeRegistry:
    server = FakeRegistry(**kw)
    servers.append(server)
    return server


def _options(tmp_path: Path, *servers: FakeRegistry, **kw: Any) -> ResolveOptions:
    base: dict[str, Any] = {
        "cache_dir": str(tmp_path / "cache"),
        "docker_config": str(tmp_path / "no-docker-config"),
        "insecure_registries": tuple(s.host for s in servers if s.scheme == "http"),
        "timeout": 2.0,
        "deadline": 20.0,
    }
    return ResolveOptions(**(base | kw))


def _secret_doc(server: FakeRegistry, user: str = "alice", password: str = SECRET) -> dict[str, Any]:
    return {"auths": {server.host: {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}}}


def test_authorization_is_not_forwarded_to_blob_storage(
    servers: list[FakeRegistry], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    registry = _start(servers, auth=("basic", "alice", SECRET))
    storage = Storage(registry)
    servers.append(storage)
    registry.redirect_blobs_to = storage.url
    registry.redirect_query = f"X-Amz-Signature={SECRET}"
    ref = registry.push("app", "1", kit.single(["A=1"]))
    results, stats = resolve_images([ref], _options(tmp_path, registry, storage, pull_secrets=(_secret_doc(registry),)))
    assert results[ref].env == ("A=1",)
    assert stats.by_kind.get("redirect") == 1
    assert [s.authorization for s in storage.seen] == [None]
    assert all(s.authorization for s in registry.seen[1:])  # the registry itself did get it
    assert SECRET in storage.seen[0].path and SECRET not in caplog.text  # signed URL followed, never logged


def test_bearer_tokens_with_access_token_field_shared_per_repository(
    servers: list[FakeRegistry], tmp_path: Path
) -> None:
    registry = _start(servers, auth=("bearer", "bob", SECRET))
    registry.token_field = "access_token"
    refs = [registry.push("team/app", f"v{i}", kit.single([f"N={i}"])) for i in range(6)]
    results, stats = resolve_images(refs, _options(tmp_path, registry, pull_secrets=(_secret_doc(registry, "bob"),)))
    assert [results[r].env for r in refs] == [(f"N={i}",) for i in range(6)], results
    assert stats.by_kind["token"] == 1
    assert stats.by_kind.get("reauth", 0) == 1  # only the first request met the challenge


def test_identity_token_is_posted_as_a_refresh_token(servers: list[FakeRegistry], tmp_path: Path) -> None:
    registry = _start(servers, auth=("bearer", "", SECRET))
    ref = registry.push("app", "1", kit.single(["A=1"]))
    secret = {"auths": {registry.host: {"identitytoken": SECRET}}}
    results, _ = resolve_images([ref], _options(tmp_path, registry, pull_secrets=(secret,)))
    assert results[ref].env == ("A=1",)
    (token_request,) = [s for s in registry.seen if s.path.startswith("/token")]
    assert token_request.method == "POST" and b"grant_type=refresh_token" in token_request.body
    assert SECRET not in token_request.path


def test_retry_after_is_honoured(servers: list[FakeRegistry], tmp_path: Path) -> None:
    registry = _start(servers)
    ref = registry.push("app", "1", kit.single(["A=1"]))
    registry.fault("/manifests/", 429, Retry_After="1")
    started = time.monotonic()
    results, stats = resolve_images([ref], _options(tmp_path, registry))
    assert results[ref].env == ("A=1",)
    assert time.monotonic() - started >= 1.0
    assert stats.by_kind == {"manifest": 1, "retry": 1, "config": 1}


def test_retry_after_past_the_deadline_gives_up_at_once(servers: list[FakeRegistry], tmp_path: Path) -> None:
    registry = _start(servers)
    ref = registry.push("app", "1", kit.single(["A=1"]))
    registry.fault("/manifests/", 429, Retry_After="30")
    started = time.monotonic()
    results, _ = resolve_images([ref], _options(tmp_path, registry, deadline=5.0))
    assert results[ref].problem.reason == "too many requests (429) after 1 tries"  # type: ignore[union-attr]
    assert time.monotonic() - started < 3.0


def test_registry_down_fails_every_reference_after_one_round_of_retries(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        host = f"127.0.0.1:{s.getsockname()[1]}"
    refs = [f"{host}/app:{i}" for i in range(20)]
    options = ResolveOptions(cache_dir=str(tmp_path), insecure_registries=(host,), docker_config=str(tmp_path))
    results, stats = resolve_images(refs, options)
    assert {results[r].problem.reason for r in refs} == {"registry unreachable: connection refused"}  # type: ignore[union-attr]
    assert stats.requests == MAX_TRIES


def test_overall_deadline(servers: list[FakeRegistry], tmp_path: Path) -> None:
    registry = _start(servers)
    ref = registry.push("app", "1", kit.single(["A=1"]))
    registry.fault("/manifests/", 0, hang=3.0, times=10)
    started = time.monotonic()
    results, _ = resolve_images([ref], _options(tmp_path, registry, timeout=10.0, deadline=1.0))
    assert results[ref].problem.reason.startswith("timeout")  # type: ignore[union-attr]
    assert time.monotonic() - started < 2.5


def test_unsupported_and_404_token_answers(servers: list[FakeRegistry], tmp_path: Path) -> None:
    registry = _start(servers, auth=("bearer", "bob", SECRET))
    registry.token_realm = f"{registry.url}/nowhere"
    ref = registry.push("app", "1", kit.single(["A=1"]))
    results, _ = resolve_images([ref], _options(tmp_path, registry))
    assert results[ref].problem.reason == "not found (404)"  # type: ignore[union-attr]


def test_no_secret_in_reasons_reprs_or_debug_logs(
    servers: list[FakeRegistry], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    basic = _start(servers, auth=("basic", "alice", "other-password"))
    bearer = _start(servers, auth=("bearer", "bob", SECRET))
    bearer.token_value = "TOKEN-" + SECRET
    refs = [
        basic.push("app", "1", kit.single(["A=1"])),  # wrong password: denied
        bearer.push("app", "1", kit.single(["B=1"])),  # good: the token is used
        bearer.push("missing", "1", kit.single(["C=1"])) + "-gone",  # 404 after auth
    ]
    auth_file = tmp_path / "auth.json"
    import json

    doc = _secret_doc(basic) | {"auths": _secret_doc(basic)["auths"] | _secret_doc(bearer, "bob")["auths"]}
    auth_file.write_text(json.dumps(doc))
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "gpuguard", ""):
        logging.getLogger(name).setLevel(logging.DEBUG)
    results, stats = resolve_images(refs, _options(tmp_path, basic, bearer, auth_files=(str(auth_file),)))
    assert results[refs[0]].problem.reason == "auth denied (401)"  # type: ignore[union-attr]
    assert results[refs[1]].env == ("B=1",)
    assert results[refs[2]].problem.reason == "not found (404)"  # type: ignore[union-attr]
    encoded = base64.b64encode(f"alice:{SECRET}".encode()).decode()
    texts = [caplog.text, repr(results), repr(stats)] + [str(r.problem) for r in results.values()]
    for text in texts:
        assert SECRET not in text and encoded not in text
    assert caplog.records  # the debug logs were on


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return key, cert


def test_tls_is_verified_and_a_ca_file_can_be_added(servers: list[FakeRegistry], tmp_path: Path) -> None:
    key, cert = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    registry = _start(servers, tls=context)
    ref = registry.push("app", "1", kit.single(["A=1"]))
    results, _ = resolve_images([ref], _options(tmp_path, registry))
    assert results[ref].problem.reason == "registry unreachable: TLS certificate verification failed"  # type: ignore[union-attr]
    results, _ = resolve_images([ref], _options(tmp_path, registry, ca_file=str(cert)))
    assert results[ref].env == ("A=1",)


def test_https_registry_refuses_plain_http_realm_and_downgrade(servers: list[FakeRegistry], tmp_path: Path) -> None:
    key, cert = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    registry = _start(servers, tls=context, auth=("bearer", "bob", SECRET))
    plain = _start(servers, auth=("bearer", "bob", SECRET))
    registry.token_realm = f"{plain.url}/token"
    ref = registry.push("app", "1", kit.single(["A=1"]))
    options = _options(tmp_path, registry, ca_file=str(cert), pull_secrets=(_secret_doc(registry, "bob"),))
    results, _ = resolve_images([ref], options)
    assert results[ref].problem.reason == f"refusing plain-HTTP token realm on {plain.host.split(':')[0]}"  # type: ignore[union-attr]
    assert not [s for s in plain.seen if s.path.startswith("/token")]
    # a blob redirect from HTTPS down to plain HTTP
    registry.auth = None
    registry.redirect_blobs_to = plain.url
    results, _ = resolve_images([ref], options)
    assert results[ref].problem.reason == "refusing redirect from HTTPS to plain HTTP"  # type: ignore[union-attr]


def test_invalid_references_are_problems_not_exceptions(tmp_path: Path) -> None:
    results, stats = resolve_images(["", "a//b", "ok"], _options(tmp_path, offline=True))
    assert results[""].problem.reason.startswith("invalid reference")  # type: ignore[union-attr]
    assert results["a//b"].problem.reason.startswith("invalid reference")  # type: ignore[union-attr]
    assert results["ok"].problem.reason == "not in cache (offline)"  # type: ignore[union-attr]
    assert stats.requests == 0
