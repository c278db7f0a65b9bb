"""Manifest, index and config parsing, platform choice, digests: untrusted JSON in, reasons out."""

from __future__ import annotations

import json

import pytest

from gpuguard.model.errors import InputError
from gpuguard.sources.images.digests import compute, valid_digest, verify
from gpuguard.sources.images.manifests import Index, Manifest, parse_config, parse_manifest, select_platforms
from gpuguard.sources.images.platforms import Platform, parse_platform
from gpuguard.sources.images.problems import ImageError
from gpuguard.sources.images.resolver import walk
from tests.images.unit import imagekit as kit


def test_digest_verification_sha256_and_sha512() -> None:
    data = b"hello"
    for algorithm in ("sha256", "sha512"):
        d = compute(data, algorithm)
        assert valid_digest(d)
        verify(data, d, "config")
        with pytest.raises(ImageError, match="config digest mismatch"):
            verify(b"hellO", d, "config")
    assert not valid_digest("sha256:" + "A" * 64)
    assert not valid_digest("md5:" + "a" * 32)
    with pytest.raises(ImageError):
        verify(data, "md5:abc", "config")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"schemaVersion": 2, "config": {"digest"', "invalid manifest JSON"),
        (b"[1, 2]", "invalid manifest JSON: not an object"),
        (b"\xff\xfe", "invalid manifest JSON"),
        (b'{"schemaVersion": 1, "fsLayers": []}', "unsupported manifest schema 1"),
        (b'{"schemaVersion": 2}', "invalid manifest: neither an image manifest nor an index"),
        (b'{"manifests": {}}', "invalid manifest: manifests is not a list"),
        (
            b'{"config": {"digest": "sha256:zz", "size": 1}}',
            "invalid manifest: config.digest is missing or unsupported",
        ),
        (b'{"config": {"digest": "sha256:' + b"a" * 64 + b'", "size": -1}}', "invalid manifest: config.size"),
        (
            b'{"config": {"mediaType": "application/vnd.cncf.helm.config.v1+json", "digest": "sha256:'
            + b"a" * 64
            + b'", "size": 1}}',
            "not a container image",
        ),
        (b"[" * 100000, "invalid manifest JSON"),
    ],
)
def test_bad_manifests_are_reasons(data: bytes, reason: str) -> None:
    with pytest.raises(ImageError) as caught:
        parse_manifest(data)
    assert caught.value.reason.startswith(reason)


def test_manifest_kinds() -> None:
    image = kit.multi({"linux/amd64": ["A=1"]})
    assert isinstance(parse_manifest(image.root_bytes), Index)
    child = parse_manifest(image.root_bytes)
    assert isinstance(child, Index)
    assert isinstance(parse_manifest(image.blobs[child.manifests[0].digest]), Manifest)


@pytest.mark.parametrize(
    ("data", "env"),
    [
        (b'{"config": {"Env": ["A=1", "B=2"]}}', ("A=1", "B=2")),
        (b'{"config": {"Env": null}}', ()),
        (b'{"config": null}', ()),
        (b"{}", ()),
    ],
)
def test_config_env(data: bytes, env: tuple[str, ...]) -> None:
    assert parse_config(data).env == env


@pytest.mark.parametrize("data", [b'{"config": {"Env": "A=1"}}', b'{"config": {"Env": [1]}}', b'{"config": []}', b"{"])
def test_bad_configs(data: bytes) -> None:
    with pytest.raises(ImageError, match="invalid config JSON"):
        parse_config(data)


def _index(*platforms: str, attestation: bool = False) -> Index:
    entries = []
    for p in platforms:
        os_name, arch, *variant = p.split("/")
        plat = {"os": os_name, "architecture": arch, **({"variant": variant[0]} if variant else {})}
        entries.append({"mediaType": kit.OCI_MANIFEST, "digest": "sha256:" + f"{len(entries):064x}", "size": 1,
                        "platform": plat})  # fmt: skip
    if attestation:
        entries.append({"mediaType": kit.OCI_MANIFEST, "digest": "sha256:" + "f" * 64, "size": 1,
                        "platform": {"os": "unknown", "architecture": "unknown"},
                        "annotations": {"vnd.docker.reference.type": "attestation-manifest"}})  # fmt: skip
    index = parse_manifest(json.dumps({"manifests": entries}).encode())
    assert isinstance(index, Index)
    return index


@pytest.mark.parametrize(
    ("wanted", "available", "chosen"),
    [
        ("linux/amd64", ["linux/arm64", "linux/amd64"], "linux/amd64"),
        ("linux/arm64", ["linux/amd64", "linux/arm64/v8"], "linux/arm64"),
        ("linux/arm64/v8", ["linux/arm64"], "linux/arm64"),
        ("linux/arm/v7", ["linux/arm/v6", "linux/arm/v7"], "linux/arm/v7"),
        ("linux/arm/v7", ["linux/arm/v5", "linux/arm/v6"], "linux/arm/v6"),
        ("linux/arm", ["linux/arm/v7"], "linux/arm/v7"),
        ("linux/x86_64", ["linux/amd64"], "linux/amd64"),
        ("linux/amd64", ["linux/amd64/v3", "linux/amd64"], "linux/amd64"),
    ],
)
def test_platform_choice(wanted: str, available: list[str], chosen: str) -> None:
    picked = select_platforms(_index(*available), parse_platform(wanted), all_platforms=False)
    assert [str(d.platform) for d in picked] == [chosen]


def test_no_matching_platform_and_attestations() -> None:
    with pytest.raises(ImageError, match=r"^no linux/amd64 image in the index$"):
        select_platforms(_index("linux/arm64"), parse_platform("linux/amd64"), all_platforms=False)
    picked = select_platforms(
        _index("linux/amd64", "linux/arm64", attestation=True), Platform.of("linux", "amd64"), True
    )
    assert [str(d.platform) for d in picked] == ["linux/amd64", "linux/arm64"]


@pytest.mark.parametrize("text", ["linux", "linux/", "a/b/c/d", ""])
def test_bad_platform(text: str) -> None:
    with pytest.raises(InputError):
        parse_platform(text)


def _walk(image: kit.Image, platform: str = "linux/amd64", all_platforms: bool = False, limit: int = 1 << 20):
    return walk(
        image.root_bytes,
        fetch_manifest=lambda d: image.blobs[d.digest],
        fetch_config=lambda d: image.blobs[d.digest],
        platform=parse_platform(platform),
        all_platforms=all_platforms,
        max_manifest_bytes=limit,
    )


def test_walk_single_and_index() -> None:
    assert _walk(kit.single(["A=1"], "linux/arm64")) == [("linux/arm64", ("A=1",))]
    image = kit.multi({"linux/amd64": ["X=amd"], "linux/arm64": ["X=arm"]})
    assert _walk(image) == [("linux/amd64", ("X=amd",))]
    assert _walk(image, "linux/arm64") == [("linux/arm64", ("X=arm",))]
    assert _walk(image, all_platforms=True) == [("linux/amd64", ("X=amd",)), ("linux/arm64", ("X=arm",))]


def test_walk_nested_index_and_entries_without_platform() -> None:
    inner = kit.multi({"linux/amd64": ["N=1"]})
    outer = kit.Image(dict(inner.blobs))
    outer.root = outer.add(kit.dumps({"manifests": [
        {"mediaType": kit.OCI_INDEX, "digest": inner.root, "size": len(inner.root_bytes)}]}))  # fmt: skip
    assert _walk(outer) == [("linux/amd64", ("N=1",))]
    # an index whose entries carry no platform: the config tells
    bare = kit.single(["B=1"], "linux/amd64")
    plain = kit.Image(dict(bare.blobs))
    plain.root = plain.add(kit.dumps({"manifests": [
        {"mediaType": kit.OCI_MANIFEST, "digest": bare.root, "size": len(bare.root_bytes)}]}))  # fmt: skip
    assert _walk(plain) == [("linux/amd64", ("B=1",))]
    with pytest.raises(ImageError, match="no linux/s390x image in the index"):
        _walk(plain, "linux/s390x")


def test_walk_refuses_oversize_child_manifest() -> None:
    image = kit.multi({"linux/amd64": ["A=1"]})
    with pytest.raises(ImageError, match="manifest larger than 10 bytes"):
        _walk(image, limit=10)


def test_challenge_parsing() -> None:
    from gpuguard.sources.images.auth import parse_challenges

    (bearer,) = parse_challenges(
        [
            'Bearer realm="https://auth.example.com/token",service="registry.example.com",'
            'scope="repository:a/b:pull,push",error="insufficient_scope"'
        ]
    )
    assert bearer.scheme == "bearer"
    assert bearer.get("realm") == "https://auth.example.com/token"
    assert bearer.get("Scope") == "repository:a/b:pull,push"
    assert bearer.get("error") == "insufficient_scope"
    basic, other = parse_challenges(['Basic realm="x \\"quoted\\"", charset=UTF-8', "Bearer realm=bare"])
    assert (basic.scheme, basic.get("realm"), basic.get("charset")) == ("basic", 'x "quoted"', "UTF-8")
    assert (other.scheme, other.get("realm")) == ("bearer", "bare")
    assert parse_challenges(["", ",,,", "Basic"])[0].scheme == "basic"
