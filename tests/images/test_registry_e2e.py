"""``resolve_images`` end to end against a real registry (Debian's docker-registry, distribution
2.8) on loopback: what each image really sets, auth, and every way a registry can fail.

Every image is built and pushed by the tests (``registry_harness``); expected env values are
the ones pushed, typed in ``conftest``. Every test gets its own cache directory and an empty
docker config directory, so neither ``~/.cache`` nor ``~/.docker`` is ever read.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from gpuguard.model.image import ImageResolution
from gpuguard.sources.images.resolver import ResolveOptions, Stats, resolve_images
from tests.images.conftest import (
    BASIC_USER,
    ENV_ALL,
    ENV_ARM,
    ENV_LEGACY,
    ENV_VOID,
    TOKEN_USER,
    StandardImages,
)
from tests.images.registry_harness import (
    FaultProxy,
    RegistryServer,
    TokenServer,
    build_image,
    closed_url,
    docker_config,
    host_of,
    http_get,
    push_built,
)


@pytest.fixture
def opts(tmp_path: Path, cache_dir: str, registry: RegistryServer) -> dict[str, Any]:
    """Keyword arguments of ResolveOptions every test starts from."""
    empty = tmp_path / "no-docker-config"
    empty.mkdir()
    return {"cache_dir": cache_dir, "docker_config": str(empty), "insecure_registries": (registry.host,)}


def resolve(refs: Sequence[str], **popts: Any) -> tuple[dict[str, ImageResolution], Stats]:
    return resolve_images(list(refs), ResolveOptions(**popts))


def one(ref: str, **popts: Any) -> tuple[ImageResolution, Stats]:
    found, stats = resolve([ref], **popts)
    assert set(found) == {ref}
    return found[ref], stats


def ok_env(resolution: ImageResolution) -> tuple[str, ...]:
    assert resolution.problem is None, resolution.problem
    assert resolution.env is not None
    return resolution.env


def problem(resolution: ImageResolution) -> str:
    """The reason: the resolution must be a problem, never a pass."""
    assert resolution.problem is not None, f"expected a problem, got configs {resolution.configs}"
    assert resolution.configs == ()
    assert resolution.env is None
    return resolution.problem.reason


@pytest.fixture
def popts(opts: dict[str, Any], faulty_registry: FaultProxy) -> dict[str, Any]:
    """``opts`` for references through the fault proxy."""
    return {**opts, "insecure_registries": (faulty_registry.host,)}


def via(proxy: FaultProxy, ref: str) -> str:
    """``ref`` (on ``registry``) as seen through the fault proxy."""
    return proxy.host + "/" + ref.split("/", 1)[1]


# --- what images set ------------------------------------------------------------------------------------------


def test_image_that_exposes_every_gpu(images: StandardImages, opts: dict[str, Any]) -> None:
    resolution, stats = one(images.all, **opts)
    assert ok_env(resolution) == ENV_ALL
    [config] = resolution.configs
    assert (config.platform, config.digest, config.source) == ("linux/amd64", images.all_digest, "registry")
    assert config.reference == images.all
    assert stats.requests == 2  # manifest + config
    assert stats.by_kind == {"manifest": 1, "config": 1}


def test_void_image(images: StandardImages, opts: dict[str, Any]) -> None:
    assert ok_env(one(images.void, **opts)[0]) == ENV_VOID


def test_legacy_cuda_image_sets_only_cuda_version(images: StandardImages, opts: dict[str, Any]) -> None:
    env = ok_env(one(images.legacy, **opts)[0])
    assert env == ENV_LEGACY
    assert not any(e.startswith("NVIDIA_VISIBLE_DEVICES=") for e in env)


def test_digest_reference(images: StandardImages, opts: dict[str, Any]) -> None:
    ref = images.by_digest(images.void, images.void_digest)
    resolution, _ = one(ref, **opts)
    assert ok_env(resolution) == ENV_VOID
    assert resolution.configs[0].digest == images.void_digest


def test_many_references_at_once(images: StandardImages, opts: dict[str, Any]) -> None:
    refs = [images.all, images.void, images.legacy, images.plain, images.docker_all, images.cuda_mirror]
    found, stats = resolve(refs, **opts)
    plain = ("PATH=/usr/bin:/bin", "APP_MODE=production")
    assert [ok_env(found[r]) for r in refs] == [ENV_ALL, ENV_VOID, ENV_LEGACY, plain, ENV_ALL, ENV_ALL]
    assert stats.requests == 2 * len(refs)


def test_duplicate_references_cost_once(images: StandardImages, opts: dict[str, Any]) -> None:
    found, stats = resolve([images.void, images.void, images.void], **opts)
    assert ok_env(found[images.void]) == ENV_VOID
    assert stats.requests == 2


# --- platforms ------------------------------------------------------------------------------------------------


def test_index_picks_linux_amd64_by_default(images: StandardImages, opts: dict[str, Any]) -> None:
    resolution, stats = one(images.multi, **opts)
    assert ok_env(resolution) == ENV_ALL
    assert [c.platform for c in resolution.configs] == ["linux/amd64"]
    assert stats.by_kind == {"index": 1, "manifest": 1, "config": 1}  # at most index + manifest + config


def test_index_other_platform(images: StandardImages, opts: dict[str, Any]) -> None:
    resolution, _ = one(images.multi, platform="linux/arm64", **opts)
    assert ok_env(resolution) == ENV_ARM
    assert [c.platform for c in resolution.configs] == ["linux/arm64"]


def test_index_all_platforms_disagree(images: StandardImages, opts: dict[str, Any]) -> None:
    resolution, stats = one(images.multi, all_platforms=True, **opts)
    assert resolution.problem is None
    assert {c.platform: c.env for c in resolution.configs} == {"linux/amd64": ENV_ALL, "linux/arm64": ENV_ARM}
    assert resolution.disagree
    assert resolution.env is None
    assert stats.by_kind == {"index": 1, "manifest": 2, "config": 2}


def test_index_all_platforms_agree(images: StandardImages, opts: dict[str, Any]) -> None:
    resolution, _ = one(images.multi_same, all_platforms=True, **opts)
    assert sorted(c.platform for c in resolution.configs) == ["linux/amd64", "linux/arm64"]
    assert not resolution.disagree
    assert resolution.env == ENV_VOID


def test_index_without_the_platform_is_a_problem(images: StandardImages, opts: dict[str, Any]) -> None:
    reason = problem(one(images.multi, platform="linux/s390x", **opts)[0])
    assert "linux/s390x" in reason


def test_docker_media_types(images: StandardImages, opts: dict[str, Any]) -> None:
    assert ok_env(one(images.docker_all, **opts)[0]) == ENV_ALL
    listed, _ = one(images.docker_list, all_platforms=True, **opts)
    assert {c.platform: c.env for c in listed.configs} == {"linux/amd64": ENV_ALL, "linux/arm64": ENV_ARM}
    assert listed.disagree


def test_single_manifest_says_its_own_platform(images: StandardImages, opts: dict[str, Any]) -> None:
    """A plain manifest (no index) is the image whatever platform was asked for; its config
    says which platform it is."""
    resolution, _ = one(images.all, platform="linux/arm64", **opts)
    assert [(c.platform, c.env) for c in resolution.configs] == [("linux/amd64", ENV_ALL)]


# --- auth -----------------------------------------------------------------------------------------------------


def _auth_opts(opts: dict[str, Any], *servers: RegistryServer) -> dict[str, Any]:
    return {**opts, "insecure_registries": (*opts["insecure_registries"], *(s.host for s in servers))}


def test_basic_auth_from_docker_config(
    auth_registry: RegistryServer, private_images: dict[str, str], opts: dict[str, Any], tmp_path: Path
) -> None:
    config = docker_config(tmp_path / "docker", {auth_registry.host: BASIC_USER})
    options = {**_auth_opts(opts, auth_registry), "docker_config": str(config.parent)}
    resolution, _ = one(private_images["basic"], **options)
    assert ok_env(resolution) == ENV_ALL


def test_basic_auth_from_registry_auth_file(
    auth_registry: RegistryServer, private_images: dict[str, str], opts: dict[str, Any], tmp_path: Path
) -> None:
    auth_file = docker_config(tmp_path / "auth", {f"http://{auth_registry.host}/v2/": BASIC_USER})
    resolution, _ = one(private_images["basic"], auth_files=(str(auth_file),), **_auth_opts(opts, auth_registry))
    assert ok_env(resolution) == ENV_ALL


def test_basic_auth_from_pull_secret(
    auth_registry: RegistryServer, private_images: dict[str, str], opts: dict[str, Any]
) -> None:
    auth = base64.b64encode(f"{BASIC_USER[0]}:{BASIC_USER[1]}".encode()).decode()
    secret = {"auths": {auth_registry.host: {"auth": auth}}}
    resolution, _ = one(private_images["basic"], pull_secrets=(secret,), **_auth_opts(opts, auth_registry))
    assert ok_env(resolution) == ENV_ALL


def test_basic_auth_without_credentials_is_denied(
    auth_registry: RegistryServer, private_images: dict[str, str], opts: dict[str, Any]
) -> None:
    reason = problem(one(private_images["basic"], **_auth_opts(opts, auth_registry))[0])
    assert "401" in reason


def test_basic_auth_wrong_password_is_denied_and_not_leaked(
    auth_registry: RegistryServer, private_images: dict[str, str], opts: dict[str, Any], tmp_path: Path
) -> None:
    auth_file = docker_config(tmp_path / "auth", {auth_registry.host: (BASIC_USER[0], "wrong-password-xyz")})
    resolution, _ = one(private_images["basic"], auth_files=(str(auth_file),), **_auth_opts(opts, auth_registry))
    reason = problem(resolution)
    assert "401" in reason
    assert "wrong-password-xyz" not in repr(resolution)


def test_credential_helper(
    auth_registry: RegistryServer,
    private_images: dict[str, str],
    opts: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``credHelpers`` runs ``docker-credential-<name> get`` with the host on stdin."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    asked = tmp_path / "asked"
    helper = bin_dir / "docker-credential-gpuguardtest"
    answer = json.dumps({"ServerURL": auth_registry.host, "Username": BASIC_USER[0], "Secret": BASIC_USER[1]})
    helper.write_text(f"#!/bin/sh\ncat > {asked}\necho '{answer}'\n")
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    config_dir = tmp_path / "docker"
    config_dir.mkdir()
    (config_dir / "config.json").write_text(json.dumps({"credHelpers": {auth_registry.host: "gpuguardtest"}}))
    options = {**_auth_opts(opts, auth_registry), "docker_config": str(config_dir)}
    resolution, _ = one(private_images["basic"], **options)
    assert ok_env(resolution) == ENV_ALL
    assert asked.read_text().strip() == auth_registry.host


def test_token_auth(
    token_registry: RegistryServer, token_server: TokenServer, private_images: dict[str, str], opts: dict[str, Any],
    tmp_path: Path,
) -> None:  # fmt: skip
    config = docker_config(tmp_path / "docker", {token_registry.host: TOKEN_USER})
    options = {**_auth_opts(opts, token_registry), "docker_config": str(config.parent)}
    resolution, stats = one(private_images["token"], **options)
    assert ok_env(resolution) == ENV_ALL
    assert [(r.user, r.accepted, r.scopes, r.service) for r in token_server.requests] == [
        ("bob", True, ("repository:private/cuda:pull",), token_server.service)
    ]
    assert stats.by_kind.get("token") == 1
    # manifest + config, plus the token, plus at most one resend of the first request after the challenge
    assert stats.requests - stats.by_kind["token"] - stats.by_kind.get("reauth", 0) == 2


def test_token_auth_wrong_password(
    token_registry: RegistryServer, token_server: TokenServer, private_images: dict[str, str], opts: dict[str, Any],
    tmp_path: Path,
) -> None:  # fmt: skip
    config = docker_config(tmp_path / "docker", {token_registry.host: (TOKEN_USER[0], "not-the-password")})
    options = {**_auth_opts(opts, token_registry), "docker_config": str(config.parent)}
    resolution, _ = one(private_images["token"], **options)
    reason = problem(resolution)
    assert "401" in reason or "denied" in reason
    assert "not-the-password" not in repr(resolution)
    assert [(r.user, r.accepted) for r in token_server.requests][:1] == [("bob", False)]


def test_token_auth_anonymous_is_denied(
    token_registry: RegistryServer, token_server: TokenServer, private_images: dict[str, str], opts: dict[str, Any]
) -> None:
    reason = problem(one(private_images["token"], **_auth_opts(opts, token_registry))[0])
    assert "401" in reason or "denied" in reason


def test_token_auth_many_images_one_token_per_repository(
    token_registry: RegistryServer, token_server: TokenServer, opts: dict[str, Any], tmp_path: Path
) -> None:
    digests = []
    for tag, env in (("a", ENV_ALL), ("b", ENV_VOID), ("c", ENV_LEGACY)):
        image = build_image(env, label=f"token-{tag}")
        digests.append(push_built(token_registry.url, "private/many", tag, image, auth=TOKEN_USER))
    token_server.reset()
    config = docker_config(tmp_path / "docker", {token_registry.host: TOKEN_USER})
    refs = [f"{token_registry.host}/private/many:{t}" for t in "abc"]
    found, stats = resolve(refs, **{**_auth_opts(opts, token_registry), "docker_config": str(config.parent)})
    assert [ok_env(found[r]) for r in refs] == [ENV_ALL, ENV_VOID, ENV_LEGACY]
    assert stats.by_kind["token"] == len(token_server.requests) == 1


# --- TLS ------------------------------------------------------------------------------------------------------


def test_tls_is_verified_by_default(tls_registry: RegistryServer, tls_image: str, opts: dict[str, Any]) -> None:
    """A certificate from an unknown CA is refused: a problem, not a pass."""
    reason = problem(one(tls_image, **{**opts, "insecure_registries": ()})[0])
    assert "TLS" in reason or "certificate" in reason or "SSL" in reason


def test_tls_with_ca_file(tls_registry: RegistryServer, tls_image: str, opts: dict[str, Any]) -> None:
    assert tls_registry.ca_path is not None
    resolution, _ = one(tls_image, **{**opts, "insecure_registries": (), "ca_file": str(tls_registry.ca_path)})
    assert ok_env(resolution) == ENV_ALL


def test_tls_registry_spoken_to_in_plain_http_fails(
    tls_registry: RegistryServer, tls_image: str, opts: dict[str, Any]
) -> None:
    """--insecure-registry means plain HTTP: an HTTPS-only registry does not answer it."""
    problem(one(tls_image, **{**opts, "insecure_registries": (tls_registry.host,)})[0])


# --- failures -------------------------------------------------------------------------------------------------


def test_registry_down(opts: dict[str, Any]) -> None:
    down = host_of(closed_url())
    start = time.monotonic()
    options = {**opts, "insecure_registries": (down,), "timeout": 2.0, "deadline": 20.0}
    resolution, _ = one(f"{down}/acme/app:1", **options)
    problem(resolution)
    assert time.monotonic() - start < 20.0


def test_not_found_tag_and_repository(images: StandardImages, opts: dict[str, Any]) -> None:
    tag = f"{images.host}/acme/trainer:no-such-tag"
    repo = f"{images.host}/acme/no-such-repo:1"
    found, _ = resolve([tag, repo], **opts)
    assert "404" in problem(found[tag])
    assert "404" in problem(found[repo])


def test_not_found_digest(images: StandardImages, opts: dict[str, Any]) -> None:
    ref = f"{images.host}/acme/trainer@sha256:{'0' * 64}"
    assert "404" in problem(one(ref, **opts)[0])


def test_429_then_success_is_retried(
    faulty_registry: FaultProxy, images: StandardImages, popts: dict[str, Any]
) -> None:
    ref = via(faulty_registry, images.all)

    faulty_registry.fail(r"/manifests/", 429, times=2, headers={"Retry-After": "0"})
    resolution, stats = one(ref, **popts)
    assert ok_env(resolution) == ENV_ALL
    assert stats.by_kind.get("retry") == 2
    assert stats.requests == 4  # 429, 429, manifest, config
    assert [r.status for r in faulty_registry.log] == [429, 429, 200, 200]


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_then_success_is_retried(
    status: int, faulty_registry: FaultProxy, images: StandardImages, popts: dict[str, Any]
) -> None:
    faulty_registry.fail(r"/blobs/", status, times=1)
    resolution, stats = one(via(faulty_registry, images.void), **popts)
    assert ok_env(resolution) == ENV_VOID
    assert stats.by_kind.get("retry") == 1
    assert [r.status for r in faulty_registry.log] == [200, status, 200]


def test_5xx_for_ever_is_a_problem(faulty_registry: FaultProxy, images: StandardImages, popts: dict[str, Any]) -> None:
    faulty_registry.fail(r"/manifests/", 503, times=None)
    resolution, _ = one(via(faulty_registry, images.void), **popts)
    assert "503" in problem(resolution)
    assert 1 < len(faulty_registry.log) < 10  # retried, boundedly


def test_429_for_ever_is_a_problem(faulty_registry: FaultProxy, images: StandardImages, popts: dict[str, Any]) -> None:
    faulty_registry.fail(r"/manifests/", 429, times=None, headers={"Retry-After": "0"})
    resolution, _ = one(via(faulty_registry, images.all), **popts)
    assert "429" in problem(resolution)


def test_dropped_connections_are_a_problem(
    faulty_registry: FaultProxy, images: StandardImages, popts: dict[str, Any]
) -> None:
    faulty_registry.drop(r"/manifests/", times=None)
    resolution, _ = one(via(faulty_registry, images.all), **popts)
    problem(resolution)


def test_one_dropped_connection_is_retried(
    faulty_registry: FaultProxy, images: StandardImages, popts: dict[str, Any]
) -> None:
    faulty_registry.drop(r"/blobs/", times=1)
    resolution, _ = one(via(faulty_registry, images.all), **popts)
    assert ok_env(resolution) == ENV_ALL


def test_truncated_manifest(faulty_registry: FaultProxy, images: StandardImages, popts: dict[str, Any]) -> None:
    """The body ends early but the HTTP exchange is well formed: the JSON is cut."""
    faulty_registry.truncate(r"/manifests/", keep=100)
    resolution, _ = one(via(faulty_registry, images.all), **popts)
    problem(resolution)


def test_connection_cut_inside_the_manifest(
    faulty_registry: FaultProxy, images: StandardImages, popts: dict[str, Any]
) -> None:
    faulty_registry.cut(r"/manifests/", keep=100)
    resolution, _ = one(via(faulty_registry, images.all), **popts)
    problem(resolution)


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"schemaVersion": 2}', b""])
def test_invalid_manifest_json(
    body: bytes, faulty_registry: FaultProxy, images: StandardImages, popts: dict[str, Any]
) -> None:
    faulty_registry.replace(r"/manifests/", body)
    resolution, _ = one(via(faulty_registry, images.all), **popts)
    problem(resolution)


def test_manifest_digest_mismatch_by_digest(
    faulty_registry: FaultProxy, images: StandardImages, registry: RegistryServer, popts: dict[str, Any]
) -> None:
    """Asked for the `all` image by digest, served the (valid) manifest of the `void` image:
    reading it would be a pass; it must be rejected."""
    void_manifest = _manifest(registry, "acme/inference", "1.0")
    faulty_registry.replace(r"/manifests/", void_manifest)
    ref = via(faulty_registry, images.by_digest(images.all, images.all_digest))
    reason = problem(one(ref, **popts)[0])
    assert "digest" in reason


def test_manifest_digest_mismatch_by_tag(
    faulty_registry: FaultProxy, images: StandardImages, registry: RegistryServer, popts: dict[str, Any]
) -> None:
    """By tag the registry's Docker-Content-Digest header names the `all` manifest; the body
    is the `void` one."""
    faulty_registry.replace(r"/manifests/", _manifest(registry, "acme/inference", "1.0"))
    reason = problem(one(via(faulty_registry, images.all), **popts)[0])
    assert "digest" in reason


def test_config_digest_mismatch(
    faulty_registry: FaultProxy, images: StandardImages, registry: RegistryServer, popts: dict[str, Any]
) -> None:
    """The config blob of the `all` image replaced by the `void` image's config."""
    void_config = _config(registry, "acme/inference", "1.0")
    faulty_registry.replace(r"/blobs/", void_config)
    reason = problem(one(via(faulty_registry, images.all), **popts)[0])
    assert "digest" in reason


def test_config_larger_than_the_limit(images: StandardImages, opts: dict[str, Any]) -> None:
    """A real 9 MiB config (the default limit is 8 MiB)."""
    reason = problem(one(images.big_config, **opts)[0])
    assert "large" in reason or "limit" in reason or "size" in reason


def test_config_limit_is_an_option(images: StandardImages, opts: dict[str, Any]) -> None:
    problem(one(images.void, max_config_bytes=64, **opts)[0])
    assert ok_env(one(images.void, max_config_bytes=64 * 1024, **opts)[0]) == ENV_VOID


def test_oversized_config_body_is_not_read_to_the_end(
    faulty_registry: FaultProxy, images: StandardImages, popts: dict[str, Any]
) -> None:
    """The manifest says a small config; the server streams 64 MiB."""
    faulty_registry.oversize(r"/blobs/", size=64 * 1024 * 1024)
    start = time.monotonic()
    problem(one(via(faulty_registry, images.all), **popts)[0])
    assert time.monotonic() - start < 10


def test_oversized_manifest(faulty_registry: FaultProxy, images: StandardImages, popts: dict[str, Any]) -> None:
    faulty_registry.oversize(r"/manifests/", size=16 * 1024 * 1024)
    problem(one(via(faulty_registry, images.all), **popts)[0])


def test_blob_redirect_is_followed(faulty_registry: FaultProxy, images: StandardImages, popts: dict[str, Any]) -> None:
    faulty_registry.redirect_blobs()
    resolution, stats = one(via(faulty_registry, images.all), **popts)
    assert ok_env(resolution) == ENV_ALL
    assert stats.by_kind.get("redirect") == 1
    assert [r.status for r in faulty_registry.log] == [200, 307, 200]


def test_request_timeout(faulty_registry: FaultProxy, images: StandardImages, popts: dict[str, Any]) -> None:
    """A registry that accepts and never answers: a timeout, within the deadline."""
    faulty_registry.hang(r"/manifests/", seconds=30)
    start = time.monotonic()
    reason = problem(one(via(faulty_registry, images.all), **{**popts, "timeout": 0.5, "deadline": 4.0})[0])
    assert "timeout" in reason or "timed out" in reason
    assert time.monotonic() - start < 8.0


def _manifest(registry: RegistryServer, repo: str, tag: str) -> bytes:
    status, _, body = http_get(registry.url, f"/v2/{repo}/manifests/{tag}")
    assert status == 200
    return body


def _config(registry: RegistryServer, repo: str, tag: str) -> bytes:
    digest = json.loads(_manifest(registry, repo, tag))["config"]["digest"]
    status, _, body = http_get(registry.url, f"/v2/{repo}/blobs/{digest}")
    assert status == 200
    return body


# --- cache ----------------------------------------------------------------------------------------------------


def test_cache_cold_then_warm_digest_references(
    faulty_registry: FaultProxy, images: StandardImages, popts: dict[str, Any]
) -> None:
    refs = [
        via(faulty_registry, images.by_digest(images.all, images.all_digest)),
        via(faulty_registry, images.by_digest(images.void, images.void_digest)),
        via(faulty_registry, images.by_digest(images.multi, images.multi_digest)),
    ]

    cold, cold_stats = resolve(refs, **popts)
    assert [ok_env(cold[r]) for r in refs] == [ENV_ALL, ENV_VOID, ENV_ALL]
    assert cold_stats.requests == 7  # 2 + 2 + (index + manifest + config)
    faulty_registry.reset()
    warm, warm_stats = resolve(refs, **popts)
    assert warm_stats.requests == 0
    assert faulty_registry.log == []
    assert [ok_env(warm[r]) for r in refs] == [ENV_ALL, ENV_VOID, ENV_ALL]
    assert {c.source for r in refs for c in warm[r].configs} == {"cache"}
    assert warm_stats.cache_hits > 0


def test_cache_warm_tag_references_within_ttl(
    faulty_registry: FaultProxy, images: StandardImages, popts: dict[str, Any]
) -> None:
    refs = [via(faulty_registry, images.all), via(faulty_registry, images.legacy)]

    resolve(refs, **popts)
    faulty_registry.reset()
    warm, stats = resolve(refs, **popts)
    assert stats.requests == 0
    assert faulty_registry.log == []
    assert [ok_env(warm[r]) for r in refs] == [ENV_ALL, ENV_LEGACY]


def test_cache_stale_tag_is_revalidated(
    faulty_registry: FaultProxy, images: StandardImages, popts: dict[str, Any]
) -> None:
    ref = via(faulty_registry, images.all)

    resolve([ref], **popts)
    faulty_registry.reset()
    resolution, stats = one(ref, **{**popts, "tag_ttl": 0.0})
    assert ok_env(resolution) == ENV_ALL
    assert stats.requests == 1  # the tag is checked again (HEAD or GET), the config comes from the cache
    assert len(faulty_registry.log) == 1


def test_cache_follows_a_moved_tag(registry: RegistryServer, opts: dict[str, Any]) -> None:
    ref = f"{registry.host}/acme/moving:latest"
    push_built(registry.url, "acme/moving", "latest", build_image(ENV_ALL, label="moving-1"))
    assert ok_env(one(ref, **opts)[0]) == ENV_ALL
    push_built(registry.url, "acme/moving", "latest", build_image(ENV_VOID, label="moving-2"))
    assert ok_env(one(ref, **opts)[0]) == ENV_ALL  # within the TTL the cached digest stands
    assert ok_env(one(ref, **{**opts, "tag_ttl": 0.0})[0]) == ENV_VOID


def test_offline_uses_only_the_cache(
    faulty_registry: FaultProxy, images: StandardImages, popts: dict[str, Any]
) -> None:
    cached = via(faulty_registry, images.all)
    never = via(faulty_registry, images.void)

    resolve([cached], **popts)
    faulty_registry.reset()
    faulty_registry.fail(".", 500, times=None)
    found, stats = resolve([cached, never], **{**popts, "offline": True, "tag_ttl": 0.0})
    assert ok_env(found[cached]) == ENV_ALL
    assert "offline" in problem(found[never])
    assert stats.requests == 0
    assert faulty_registry.log == []


def test_offline_with_empty_cache(images: StandardImages, opts: dict[str, Any]) -> None:
    found, stats = resolve([images.all, images.by_digest(images.void, images.void_digest)], offline=True, **opts)
    assert all(problem(r) for r in found.values())
    assert stats.requests == 0


def test_cache_survives_corruption(
    faulty_registry: FaultProxy, images: StandardImages, popts: dict[str, Any], cache_dir: str
) -> None:
    """A cache file changed on disk is not believed: it is fetched again."""
    ref = via(faulty_registry, images.by_digest(images.all, images.all_digest))

    resolve([ref], **popts)
    files = [p for p in Path(cache_dir).rglob("*") if p.is_file()]
    assert files
    for path in files:
        path.write_bytes(path.read_bytes().replace(b"=all", b"=void"))
    resolution, stats = one(ref, **popts)
    assert ok_env(resolution) == ENV_ALL
    assert stats.requests > 0
