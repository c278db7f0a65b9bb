"""Reference parsing: Docker Hub normalisation, host detection, digests, and never a crash."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuguard.model.errors import InputError
from gpuguard.sources.images.reference import parse_reference

HEX = "a" * 64


@pytest.mark.parametrize(
    "row",
    [
        ("busybox", "docker.io", "library/busybox", "latest", None, "registry-1.docker.io"),
        ("busybox:1.36", "docker.io", "library/busybox", "1.36", None, "registry-1.docker.io"),
        ("myorg/app", "docker.io", "myorg/app", "latest", None, "registry-1.docker.io"),
        ("docker.io/busybox", "docker.io", "library/busybox", "latest", None, "registry-1.docker.io"),
        ("index.docker.io/library/busybox", "docker.io", "library/busybox", "latest", None, "registry-1.docker.io"),
        ("registry-1.docker.io/x/y:1", "docker.io", "x/y", "1", None, "registry-1.docker.io"),
        ("localhost/app", "localhost", "app", "latest", None, "localhost"),
        ("localhost:5000/x", "localhost:5000", "x", "latest", None, "localhost:5000"),
        ("127.0.0.1:5000/a/b:c", "127.0.0.1:5000", "a/b", "c", None, "127.0.0.1:5000"),
        (
            "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04",
            "nvcr.io",
            "nvidia/cuda",
            "12.4.1-base-ubuntu22.04",
            None,
            "nvcr.io",
        ),
        (f"busybox@sha256:{HEX}", "docker.io", "library/busybox", None, f"sha256:{HEX}", "registry-1.docker.io"),
        (f"ghcr.io/o/r:v1@sha256:{HEX}", "ghcr.io", "o/r", "v1", f"sha256:{HEX}", "ghcr.io"),
        (f"q.io/r@sha512:{'b' * 128}", "q.io", "r", None, f"sha512:{'b' * 128}", "q.io"),
        ("Example.COM/app", "example.com", "app", "latest", None, "example.com"),
        ("[::1]:5000/app", "[::1]:5000", "app", "latest", None, "[::1]:5000"),
        ("a/b/c/d:e_f.g-h", "docker.io", "a/b/c/d", "e_f.g-h", None, "registry-1.docker.io"),
    ],
)
def test_parse(row: tuple[str, ...]) -> None:
    text, *expected = row
    ref = parse_reference(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest, ref.endpoint) == tuple(expected)
    assert parse_reference(str(ref)) == ref


def test_canonical_text() -> None:
    assert str(parse_reference("busybox")) == "docker.io/library/busybox:latest"
    assert parse_reference(f"busybox@sha256:{HEX}").identifier == f"sha256:{HEX}"
    assert parse_reference("busybox:1").identifier == "1"


@pytest.mark.parametrize(
    "text",
    [
        "",
        " busybox",
        "UPPER",
        "busybox:",
        "busybox:-bad",
        "busybox@sha256:abc",
        f"busybox@md5:{HEX}",
        f"busybox@sha256:{HEX.upper()}",
        "a//b",
        "/a",
        "a/",
        "host:port/x",
        HEX,
        "x" * 300,
        "bad_host_.com/x",
        "busybox:" + "t" * 129,
    ],
)
def test_invalid(text: str) -> None:
    with pytest.raises(InputError):
        parse_reference(text)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=80) | st.from_regex(r"[a-z0-9.:/@_-]{1,60}", fullmatch=True))
def test_never_crashes(text: str) -> None:
    try:
        ref = parse_reference(text)
    except InputError:
        return
    assert parse_reference(str(ref)) == ref
