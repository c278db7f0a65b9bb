"""The test registries are what they claim: real registries that store what the tests push and
enforce their auth, and a fault proxy that does what it is told. Checked with plain HTTP, not
with gpuguard's client, so the end-to-end tests rest on solid ground."""

from __future__ import annotations

import base64
import gzip
import http.client
import io
import json
import tarfile
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.images.conftest import BASIC_USER, ENV_ALL, ENV_ARM, TOKEN_USER, StandardImages
from tests.images.registry_harness import (
    DOCKER_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    FaultProxy,
    RegistryServer,
    TokenServer,
    basic_header,
    build_image,
    closed_url,
    http_get,
    sha256,
    write_docker_save_tar,
    write_oci_archive,
    write_oci_layout,
)


def get(url: str, path: str, headers: Mapping[str, str] | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:
    return http_get(url, path, headers)


def test_registry_serves_pushed_manifest_and_config(registry: RegistryServer, images: StandardImages) -> None:
    status, headers, body = get(registry.url, "/v2/acme/trainer/manifests/2024.1")
    assert status == 200
    assert headers["Docker-Content-Digest"] == images.all_digest == sha256(body)
    manifest = json.loads(body)
    assert manifest["mediaType"] == OCI_MANIFEST
    status, _, config = get(registry.url, f"/v2/acme/trainer/blobs/{manifest['config']['digest']}")
    assert status == 200
    assert sha256(config) == manifest["config"]["digest"]
    assert json.loads(config)["config"]["Env"] == list(ENV_ALL)


def test_multi_platform_index_lists_both_platforms(registry: RegistryServer, images: StandardImages) -> None:
    status, _, body = get(registry.url, "/v2/acme/multi/manifests/1.0")
    assert status == 200
    index = json.loads(body)
    assert index["mediaType"] == OCI_INDEX
    assert [(m["platform"]["os"], m["platform"]["architecture"]) for m in index["manifests"]] == [
        ("linux", "amd64"),
        ("linux", "arm64"),
    ]
    status, _, body = get(registry.url, "/v2/docker/multi/manifests/1.0")
    assert status == 200
    assert json.loads(body)["mediaType"] == DOCKER_LIST


def test_basic_auth_registry_enforces_credentials(
    auth_registry: RegistryServer, private_images: dict[str, str]
) -> None:
    path = "/v2/private/cuda/manifests/1.0"
    status, headers, _ = get(auth_registry.url, path)
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Basic ")
    assert get(auth_registry.url, path, {"Authorization": basic_header((BASIC_USER[0], "wrong"))})[0] == 401
    assert get(auth_registry.url, path, {"Authorization": basic_header(BASIC_USER)})[0] == 200


def _token(ts: TokenServer, scope: str, auth: tuple[str, str] | None) -> tuple[int, str | None]:
    headers = {"Authorization": basic_header(auth)} if auth else {}
    status, _, body = get(ts.url, f"/token?service={ts.service}&scope={scope}", headers)
    return status, json.loads(body)["token"] if status == 200 else None


def test_token_registry_enforces_tokens(
    token_registry: RegistryServer, token_server: TokenServer, private_images: dict[str, str], tmp_path: Path
) -> None:
    path = "/v2/private/cuda/manifests/1.0"
    status, headers, _ = get(token_registry.url, path)
    assert status == 401
    challenge = headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'realm="{token_server.realm}"' in challenge
    assert 'scope="repository:private/cuda:pull"' in challenge

    # Right credentials and scope: the real registry accepts the token.
    status, token = _token(token_server, "repository:private/cuda:pull", TOKEN_USER)
    assert status == 200
    assert get(token_registry.url, path, {"Authorization": f"Bearer {token}"})[0] == 200
    # Wrong password: no token at all.
    assert _token(token_server, "repository:private/cuda:pull", (TOKEN_USER[0], "nope")) == (401, None)
    # Anonymous: a token granting nothing, which the registry refuses.
    status, anonymous = _token(token_server, "repository:private/cuda:pull", None)
    assert status == 200
    assert get(token_registry.url, path, {"Authorization": f"Bearer {anonymous}"})[0] == 401
    # A token for another repository does not open this one.
    _, other = _token(token_server, "repository:other/repo:pull", TOKEN_USER)
    assert get(token_registry.url, path, {"Authorization": f"Bearer {other}"})[0] == 401
    # A token signed by a key outside the registry's rootcertbundle is refused.
    impostor = TokenServer(tmp_path / "impostor", users=dict([TOKEN_USER]), service=token_server.service)
    try:
        impostor.issuer = token_server.issuer
        _, forged = _token(impostor, "repository:private/cuda:pull", TOKEN_USER)
        assert get(token_registry.url, path, {"Authorization": f"Bearer {forged}"})[0] == 401
    finally:
        impostor.stop()
    assert [(r.user, r.accepted) for r in token_server.requests] == [
        ("bob", True),
        ("bob", False),
        (None, True),
        ("bob", True),
    ]


def test_fault_proxy_injects_then_passes(faulty_registry: FaultProxy, images: StandardImages) -> None:
    path = "/v2/acme/trainer/manifests/2024.1"
    faulty_registry.fail("/manifests/", 429, times=2, headers={"Retry-After": "0"})
    statuses = [get(faulty_registry.url, path)[0] for _ in range(3)]
    assert statuses == [429, 429, 200]
    faulty_registry.truncate("/manifests/", keep=10, times=1)
    status, _, body = get(faulty_registry.url, path)
    assert (status, len(body)) == (200, 10)
    faulty_registry.drop("/manifests/")
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        get(faulty_registry.url, path)
    faulty_registry.cut("/manifests/", keep=10, times=1)
    with pytest.raises(http.client.IncompleteRead):
        get(faulty_registry.url, path)
    faulty_registry.replace("/manifests/", b"{}", times=1)
    status, headers, body = get(faulty_registry.url, path)
    assert (status, body, headers["Docker-Content-Digest"]) == (200, b"{}", images.all_digest)
    assert [(r.status, r.fault) for r in faulty_registry.log] == [
        (429, "status"), (429, "status"), (200, None), (200, "truncate"), (None, "drop"), (None, "cut"),
        (200, "replace"),
    ]  # fmt: skip


def test_fault_proxy_redirects_blobs(faulty_registry: FaultProxy, images: StandardImages) -> None:
    _, _, body = get(faulty_registry.url, "/v2/acme/trainer/manifests/2024.1")
    config = json.loads(body)["config"]["digest"]
    faulty_registry.redirect_blobs()
    status, headers, _ = get(faulty_registry.url, f"/v2/acme/trainer/blobs/{config}")
    assert status == 307
    status, _, data = get(faulty_registry.url, headers["Location"].removeprefix(faulty_registry.url))
    assert (status, sha256(data)) == (200, config)


def test_closed_url_refuses_connections() -> None:
    with pytest.raises(ConnectionRefusedError):
        get(closed_url(), "/v2/")


def test_local_sources_hold_the_image(tmp_path: Path) -> None:
    image = build_image({"linux/amd64": ENV_ALL, "linux/arm64": ENV_ARM}, platforms=("linux/amd64", "linux/arm64"))
    layout = write_oci_layout(tmp_path / "layout", {"v1": image})
    index = json.loads((layout / "index.json").read_text())
    [top] = index["manifests"]
    assert top["annotations"]["org.opencontainers.image.ref.name"] == "v1"
    assert top["digest"] == image.digest
    blob = (layout / "blobs" / "sha256" / image.digest.split(":")[1]).read_bytes()
    assert sha256(blob) == image.digest

    with tarfile.open(write_oci_archive(tmp_path / "image.oci.tar", {"v1": image})) as tar:
        assert {"oci-layout", "index.json"} <= set(tar.getnames())

    with tarfile.open(write_docker_save_tar(tmp_path / "save.tar", {"acme/app:1": image})) as tar:
        [entry] = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        assert entry["RepoTags"] == ["acme/app:1"]
        config = json.loads(tar.extractfile(entry["Config"]).read())  # type: ignore[union-attr]
        assert config["config"]["Env"] == list(ENV_ALL)
        assert config["architecture"] == "amd64"
        layer = tar.extractfile(entry["Layers"][0]).read()  # type: ignore[union-attr]
        assert config["rootfs"]["diff_ids"] == [sha256(layer)]
        with tarfile.open(fileobj=io.BytesIO(layer)) as inner:
            assert inner.getnames() == ["etc/gpuguard-test"]
    assert gzip.decompress(image.platforms[0].layer.data) == image.platforms[0].layer_tar
    assert base64.b64decode(basic_header(("a", "b"))[6:]) == b"a:b"
