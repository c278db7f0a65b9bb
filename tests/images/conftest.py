"""Real registries on loopback for the image tests (see ``registry_harness``).

Session fixtures, each a running ``docker-registry`` (Debian's package, distribution 2.8):

- ``registry``: no auth;
- ``auth_registry``: basic auth (``htpasswd``, bcrypt), credentials in ``.credentials``;
- ``token_registry``: token auth; ``.token_server`` is the in-process token service,
  ``.credentials`` the user it knows;
- ``tls_registry``: HTTPS with a certificate from a test CA (``.ca_path``);
- ``faulty_registry``: a :class:`FaultProxy` in front of ``registry``, reset for every test;
- ``images``: the standard images, pushed once to ``registry`` (and the private ones to the
  auth registries).

A test that uses any of them is skipped, with the reason, only when the ``docker-registry``
binary is absent (``./scripts/test`` installs it, so CI runs them).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.images.registry_harness import (
    FaultProxy,
    RegistryServer,
    TokenServer,
    build_image,
    push_built,
    push_image,
    registry_binary,
    start_registry,
)

SKIP_REASON = (
    "docker-registry is not installed: the real-registry tests need Debian's docker-registry package "
    "(./scripts/test installs it; apt-get install docker-registry)"
)
BASIC_USER = ("alice", "correct-horse-battery")
TOKEN_USER = ("bob", "staple-tr0mbone")

# Env of the standard images
ENV_ALL = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "NVIDIA_VISIBLE_DEVICES=all",
           "NVIDIA_DRIVER_CAPABILITIES=compute,utility", "CUDA_VERSION=12.4.1")  # fmt: skip
ENV_VOID = ("PATH=/usr/bin:/bin", "NVIDIA_VISIBLE_DEVICES=void", "CUDA_VERSION=12.4.1")
ENV_LEGACY = ("PATH=/usr/local/cuda/bin:/usr/bin:/bin", "CUDA_VERSION=9.0.176")
ENV_PLAIN = ("PATH=/usr/bin:/bin", "APP_MODE=production")
ENV_ARM = ("PATH=/usr/bin:/bin", "NVIDIA_VISIBLE_DEVICES=void")


def _need_registry() -> None:
    if registry_binary() is None:
        pytest.skip(SKIP_REASON)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    _need_registry()
    server = start_registry(tmp_path_factory.mktemp("registry"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    _need_registry()
    server = start_registry(tmp_path_factory.mktemp("auth-registry"), htpasswd=BASIC_USER)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    _need_registry()
    server = start_registry(tmp_path_factory.mktemp("token-registry"), token_auth=TOKEN_USER)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """HTTPS with a certificate (for 127.0.0.1) from a test CA: ``.ca_path``."""
    _need_registry()
    server = start_registry(tmp_path_factory.mktemp("tls-registry"), tls=True)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tls_image(tls_registry: RegistryServer) -> str:
    """An NVIDIA_VISIBLE_DEVICES=all image on the TLS registry."""
    push_image(tls_registry.url, "secure/cuda", "1.0", env=ENV_ALL, ca_path=tls_registry.ca_path)
    return f"{tls_registry.host}/secure/cuda:1.0"


@pytest.fixture
def token_server(token_registry: RegistryServer) -> TokenServer:
    """The token registry's token service, its request log cleared for this test."""
    assert token_registry.token_server is not None
    token_registry.token_server.reset()
    return token_registry.token_server


@pytest.fixture(scope="session")
def _fault_proxy(registry: RegistryServer) -> Iterator[FaultProxy]:
    proxy = FaultProxy(registry.url)
    yield proxy
    proxy.stop()


@pytest.fixture
def faulty_registry(_fault_proxy: FaultProxy) -> Iterator[FaultProxy]:
    """The fault proxy in front of ``registry``, with no faults and an empty log."""
    _fault_proxy.reset()
    yield _fault_proxy
    _fault_proxy.reset()


@dataclass(frozen=True)
class StandardImages:
    """References (``host:port/repo:tag``) and digests of the images pushed for the tests."""

    host: str
    all: str
    all_digest: str
    void: str
    void_digest: str
    legacy: str  # only CUDA_VERSION (a CUDA image older than 9.0's NVIDIA_VISIBLE_DEVICES)
    cuda_mirror: str  # NVIDIA_VISIBLE_DEVICES=all under a name of the gpuImages families
    cuda_mirror_void: str  # void, under a name of the gpuImages families
    plain: str
    multi: str  # OCI index: amd64 exposes (all), arm64 does not (void)
    multi_digest: str
    multi_same: str  # OCI index whose platforms agree (both void)
    docker_all: str  # Docker media types (schema 2), NVIDIA_VISIBLE_DEVICES=all
    docker_list: str  # Docker manifest list, amd64 all / arm64 void
    big_config: str  # config of about 9 MiB (over the default 8 MiB limit)

    def by_digest(self, ref: str, digest: str) -> str:
        return f"{ref.rsplit(':', 1)[0]}@{digest}"


@pytest.fixture(scope="session")
def images(registry: RegistryServer) -> StandardImages:
    url, host = registry.url, registry.host
    both = ("linux/amd64", "linux/arm64")
    # Names that match no gpuImages family (as an in-house image built FROM a CUDA image):
    # without --resolve-images they are assumed not to set the variable.
    all_digest = push_image(url, "acme/trainer", "2024.1", env=ENV_ALL)
    void_digest = push_image(url, "acme/inference", "1.0", env=ENV_VOID)
    push_image(url, "ml/old-trainer", "2019", env=ENV_LEGACY)
    push_image(url, "nvidia/cuda", "12.4.1-base", env=ENV_ALL)  # a mirror: matches */nvidia/cuda*
    push_image(url, "nvidia/cuda", "12.4.1-void", env=ENV_VOID)
    push_image(url, "acme/web", "2.3", env=ENV_PLAIN)
    multi = build_image({"linux/amd64": ENV_ALL, "linux/arm64": ENV_ARM}, platforms=both, label="multi")
    multi_digest = push_built(url, "acme/multi", "1.0", multi)
    push_image(url, "acme/multi-same", "1.0", env=ENV_VOID, platforms=both)
    push_image(url, "docker/cuda", "12.4.1", env=ENV_ALL, media="docker")
    push_image(url, "docker/multi", "1.0", env={"linux/amd64": ENV_ALL, "linux/arm64": ENV_ARM}, platforms=both,
               media="docker")  # fmt: skip
    push_image(url, "acme/big-config", "1.0", env=ENV_ALL, config_padding=9 * 1024 * 1024)
    return StandardImages(
        host=host,
        all=f"{host}/acme/trainer:2024.1",
        all_digest=all_digest,
        void=f"{host}/acme/inference:1.0",
        void_digest=void_digest,
        legacy=f"{host}/ml/old-trainer:2019",
        cuda_mirror=f"{host}/nvidia/cuda:12.4.1-base",
        cuda_mirror_void=f"{host}/nvidia/cuda:12.4.1-void",
        plain=f"{host}/acme/web:2.3",
        multi=f"{host}/acme/multi:1.0",
        multi_digest=multi_digest,
        multi_same=f"{host}/acme/multi-same:1.0",
        docker_all=f"{host}/docker/cuda:12.4.1",
        docker_list=f"{host}/docker/multi:1.0",
        big_config=f"{host}/acme/big-config:1.0",
    )


@pytest.fixture(scope="session")
def private_images(auth_registry: RegistryServer, token_registry: RegistryServer) -> dict[str, str]:
    """``{"basic": ref, "token": ref}``: NVIDIA_VISIBLE_DEVICES=all images behind basic and token auth."""
    push_image(auth_registry.url, "private/cuda", "1.0", env=ENV_ALL, auth=BASIC_USER)
    push_image(token_registry.url, "private/cuda", "1.0", env=ENV_ALL, auth=TOKEN_USER)
    return {
        "basic": f"{auth_registry.host}/private/cuda:1.0",
        "token": f"{token_registry.host}/private/cuda:1.0",
    }


@pytest.fixture
def cache_dir(tmp_path: Path) -> str:
    """A cache of this test's own: no test sees another's cache, and ``~/.cache`` is never used."""
    path = tmp_path / "cache"
    path.mkdir()
    return str(path)
