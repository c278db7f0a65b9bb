"""``gpuguard audit --resolve-images`` with a stubbed resolver: pre-scan, pull secrets, verdicts, header notes.

The real registry is exercised end to end in ``tests/images``; here ``resolve_images`` is replaced
so each verdict follows from a known image config.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib
import importlib.util
import json
import sys
import types
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from gpuguard.audit.images import image_references, pull_secrets
from gpuguard.model.image import ImageConfig, ImageProblem, ImageResolution
from tests.audit.helpers import audit, audit_json

RESOLVER = "gpuguard.sources.images.resolver"
ALL = "registry.example.com/app:1"
VOID = "registry.example.com/app:void"
CUDA = "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04"
DENIED = "registry.example.com/x:1"
MULTI = "registry.example.com/multi:1"
PASSWORD = "s3cr3t-Pa55w0rd"
AUTH = base64.b64encode(f"robot:{PASSWORD}".encode()).decode()
DOCKER_CONFIG = {"auths": {"registry.example.com": {"auth": AUTH}}}
SECRET_DATA = base64.b64encode(json.dumps(DOCKER_CONFIG).encode()).decode()


def config(ref: str, *env: str, platform: str = "linux/amd64", source: str = "registry") -> ImageConfig:
    return ImageConfig(ref, "sha256:" + "1" * 64, platform, env, source)


IMAGES = {
    ALL: ImageResolution(ALL, (config(ALL, "PATH=/bin", "NVIDIA_VISIBLE_DEVICES=all"),)),
    VOID: ImageResolution(VOID, (config(VOID, "NVIDIA_VISIBLE_DEVICES=void", source="cache"),)),
    CUDA: ImageResolution(CUDA, (config(CUDA, "NVIDIA_VISIBLE_DEVICES=void", "CUDA_VERSION=12.4.1"),)),
    DENIED: ImageResolution(DENIED, problem=ImageProblem(DENIED, "auth denied (401)")),
    MULTI: ImageResolution(MULTI, (config(MULTI, "NVIDIA_VISIBLE_DEVICES=all"),
                                   config(MULTI, "NVIDIA_VISIBLE_DEVICES=void", platform="linux/arm64"))),
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class _Options:  # stands in for ResolveOptions while the resolver module is not there
    platform: str = "linux/amd64"
    all_platforms: bool = False
    auth_files: tuple[str, ...] = ()
    pull_secrets: tuple[Any, ...] = ()
    insecure_registries: tuple[str, ...] = ()
    ca_file: str | None = None
    cache_dir: str | None = None
    offline: bool = False
    local: tuple[str, ...] = ()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], Any]]:
    """Replace ``resolve_images``; each call's references and options are recorded."""
    seen: list[tuple[list[str], Any]] = []

    def fake(refs: Iterable[str], options: Any) -> tuple[dict[str, ImageResolution], Any]:
        refs = list(refs)
        seen.append((refs, options))
        missing = {r: ImageResolution(r, problem=ImageProblem(r, "not found (404)")) for r in refs}
        return {r: IMAGES.get(r, missing.get(r)) for r in refs}, types.SimpleNamespace(requests=7)  # type: ignore[misc]

    if importlib.util.find_spec(RESOLVER) is not None:
        monkeypatch.setattr(importlib.import_module(RESOLVER), "resolve_images", fake)
    else:
        module = types.ModuleType(RESOLVER)
        module.ResolveOptions = _Options  # type: ignore[attr-defined]
        module.resolve_images = fake  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, RESOLVER, module)
        monkeypatch.setattr(importlib.import_module("gpuguard.sources.images"), "resolver", module, raising=False)
    return seen


def deployment(name: str, image: str, *, gpus: int = 0) -> str:
    limits = f"\n          resources: {{limits: {{nvidia.com/gpu: {gpus}}}}}" if gpus else ""
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: apps}}
spec:
  template:
    spec:
      containers:
        - name: main
          image: {image}{limits}
"""


def rules(report: dict[str, Any]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in report["findings"]:
        r = f["resource"]
        out.setdefault(r["name"] if r else Path(f["location"]["path"]).name, set()).add(f["rule_id"])
    return out


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# --- verdicts ----------------------------------------------------------------------------------------


def test_image_that_sets_all_is_a_definite_gg101(tmp_path: Path, calls: list[Any]) -> None:
    app = write(tmp_path, "app.yaml", deployment("app", ALL))
    _, plain, _ = audit_json(app)
    assert rules(plain) == {}  # not inspected: an ordinary name is assumed not to set it
    assert calls == []  # and nothing was asked of a registry
    code, report, _ = audit_json("--resolve-images", app)
    assert code == 1
    assert rules(report) == {"app": {"GG101"}}
    [f] = report["findings"]
    assert f"its image env ({ALL} sets" in f["message"]


def test_void_image_and_inspected_gpu_family_image_are_silent(tmp_path: Path, calls: list[Any]) -> None:
    app = write(tmp_path, "app.yaml", deployment("quiet", VOID) + "---\n" + deployment("cuda", CUDA))
    _, plain, _ = audit_json(app)
    assert rules(plain) == {"cuda": {"GG108"}}
    assert "--resolve-images" in plain["findings"][0]["remediation"]  # suggested when it was not given
    code, report, _ = audit_json("--resolve-images", app)
    assert code == 0, report["findings"]
    assert report["findings"] == []


def test_image_that_could_not_be_inspected_is_gg108_with_the_reason(tmp_path: Path, calls: list[Any]) -> None:
    app = write(tmp_path, "app.yaml", deployment("denied", DENIED))
    code, report, _ = audit_json("--resolve-images", app)
    assert code == 1
    [f] = report["findings"]
    assert f["rule_id"] == "GG108"
    assert f"image {DENIED} could not be inspected: auth denied (401)" in f["message"]
    assert "--registry-auth" in f["remediation"]


def test_gpu_requesting_container_with_a_failed_image_is_still_judged(tmp_path: Path, calls: list[Any]) -> None:
    app = write(tmp_path, "app.yaml", deployment("train", DENIED, gpus=1))
    _, report, _ = audit_json("--resolve-images", app)
    assert {f["rule_id"] for f in report["findings"]} <= {"GG108"}  # unknown, never read as a pass


def test_platforms_that_disagree_are_gg108_naming_them(tmp_path: Path, calls: list[Any]) -> None:
    app = write(tmp_path, "app.yaml", deployment("multi", MULTI))
    _, report, _ = audit_json("--resolve-images", "--all-platforms", app)
    [f] = report["findings"]
    assert f["rule_id"] == "GG108"
    assert "platforms that set different NVIDIA_VISIBLE_DEVICES (linux/amd64: all; linux/arm64: void)" in f["message"]
    assert calls[0][1].all_platforms is True


def test_platforms_that_differ_only_in_other_variables_agree(tmp_path: Path, calls: list[Any]) -> None:
    ref = "registry.example.com/paths:1"
    IMAGES[ref] = ImageResolution(ref, (config(ref, "PATH=/a", "NVIDIA_VISIBLE_DEVICES=all"),
                                        config(ref, "PATH=/b", "NVIDIA_VISIBLE_DEVICES=all", platform="linux/arm64")))
    try:
        app = write(tmp_path, "app.yaml", deployment("paths", ref))
        _, report, _ = audit_json("--resolve-images", "--all-platforms", app)
        assert rules(report) == {"paths": {"GG101"}}
    finally:
        del IMAGES[ref]


def test_image_the_prescan_missed_stays_unknown(tmp_path: Path, calls: list[Any]) -> None:
    hidden = "registry.example.com/hidden:1"
    text = deployment("hidden", "PLACEHOLDER").replace("image: PLACEHOLDER", f"image: >-\n            {hidden}")
    app = write(tmp_path, "app.yaml", text)
    _, report, _ = audit_json("--resolve-images", app)
    [f] = report["findings"]
    assert f["rule_id"] == "GG108"
    assert "was not found by the pre-scan" in f["message"]
    assert hidden not in calls[0][0]


def test_header_notes_count_inspected_cached_and_failed(tmp_path: Path, calls: list[Any]) -> None:
    app = write(tmp_path, "app.yaml", "---\n".join(
        deployment(n, i) for n, i in (("a", ALL), ("b", VOID), ("c", DENIED), ("d", ALL))))  # fmt: skip
    _, report, _ = audit_json("--resolve-images", app)
    notes = report["profile"]["notes"]
    assert "2 of 3 images inspected (1 from the cache, 7 registry requests)" in notes
    assert any(n.startswith("1 images not inspected") and f"{DENIED} could not be inspected: auth denied (401)" in n
               for n in notes)  # fmt: skip
    assert not any("assumed not to set" in n for n in notes)


# --- options -----------------------------------------------------------------------------------------


def test_options_reach_the_resolver(tmp_path: Path, calls: list[Any]) -> None:
    app = write(tmp_path, "app.yaml", deployment("app", ALL))
    auth = write(tmp_path, "auth.json", json.dumps(DOCKER_CONFIG))
    layout = tmp_path / "layout"
    layout.mkdir()
    code, _, err = audit("--format", "json", "--resolve-images", "--platform", "linux/arm64", "--registry-auth", auth,
                         "--insecure-registry", "localhost:5000", "--insecure-registry", "10.0.0.1",
                         "--ca-file", auth, "--cache-dir", str(tmp_path / "cache"), "--offline",
                         "--image-source", str(layout), app)  # fmt: skip
    assert code == 1, err
    [(refs, options)] = calls
    assert refs == [ALL]
    assert options.platform == "linux/arm64"
    assert options.auth_files == (auth,)
    assert options.insecure_registries == ("localhost:5000", "10.0.0.1")
    assert options.ca_file == auth
    assert options.cache_dir == str(tmp_path / "cache")
    assert options.offline is True
    assert options.local == (str(layout),)


@pytest.mark.parametrize("args", [["--offline"], ["--image-source", "x.tar"], ["--all-platforms"],
                                  ["--registry-auth", "a.json"], ["--platform", "amd64"]])  # fmt: skip
def test_companions_without_resolve_images_are_usage_errors(tmp_path: Path, args: list[str]) -> None:
    app = write(tmp_path, "app.yaml", deployment("app", ALL))
    code, _, err = audit(*args, app)
    assert code == 2
    assert "gpuguard: error:" in err


# --- pull secrets --------------------------------------------------------------------------------------

PULL_SECRET = f"""\
apiVersion: v1
kind: Secret
metadata: {{name: regcred, namespace: apps}}
type: kubernetes.io/dockerconfigjson
data:
  .dockerconfigjson: {SECRET_DATA}
"""


@pytest.mark.parametrize("fmt", ["table", "json", "sarif", "junit", "policyreport"])
def test_pull_secret_reaches_the_resolver_and_is_never_printed(
    tmp_path: Path, calls: list[Any], fmt: str
) -> None:
    app = write(tmp_path, "app.yaml", deployment("denied", DENIED) + "---\n" + PULL_SECRET)
    code, out, err = audit("--format", fmt, "--no-color", "--resolve-images", app)
    assert code == 1
    assert calls[0][1].pull_secrets == (DOCKER_CONFIG,)
    for text in (out, err):
        for secret in (PASSWORD, AUTH, SECRET_DATA):
            assert secret not in text


def test_pull_secret_in_json_list_and_string_data(tmp_path: Path, calls: list[Any]) -> None:
    listed = {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a"}, "type": "kubernetes.io/dockerconfigjson",
         "stringData": {".dockerconfigjson": json.dumps(DOCKER_CONFIG)}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "b"}, "type": "kubernetes.io/dockercfg",
         "data": {".dockercfg": base64.b64encode(json.dumps(DOCKER_CONFIG["auths"]).encode()).decode()}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "c"}, "type": "Opaque",
         "data": {".dockerconfigjson": SECRET_DATA}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
         "spec": {"containers": [{"name": "x", "image": ALL}]}},
    ]}  # fmt: skip
    app = write(tmp_path, "all.json", json.dumps(listed))
    audit_json("--resolve-images", app)
    [(refs, options)] = calls
    assert refs == [ALL]
    assert options.pull_secrets == (DOCKER_CONFIG,)  # the dockercfg one is the same credentials, once


def test_bad_pull_secrets_are_skipped() -> None:
    bad = PULL_SECRET.replace(SECRET_DATA, "not base64!")
    assert list(pull_secrets(bad.encode(), "x.yaml")) == []
    assert list(pull_secrets(PULL_SECRET.encode(), "x.yaml")) == [DOCKER_CONFIG]


# --- pre-scan ------------------------------------------------------------------------------------------

YAML = b"""\
spec:
  containers:
    - name: a
      image: registry.example.com/a:1
    - {name: b, image: "registry.example.com/b@sha256:0123"}
    - name: c
      image: 'ghcr.io/org/c:2'  # a comment
  initContainers:
  - image: &base nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04
    name: d
image:
  repository: not-a-reference
other:
  image: {repository: x}
  image: ${NOT_AN_IMAGE}
"""


def test_prescan_finds_images_in_yaml() -> None:
    assert list(image_references(YAML)) == [
        "registry.example.com/a:1", "registry.example.com/b@sha256:0123", "ghcr.io/org/c:2",
        "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04"]  # fmt: skip


def test_prescan_leaves_out_operator_component_names() -> None:
    policy = b"""\
spec:
  toolkit:
    repository: nvcr.io/nvidia/k8s
    image: container-toolkit
  devicePlugin:
    image: k8s-device-plugin
    version: v0.17.4
  containers:
    - name: x
      image: busybox:1.36
    - image: nginx:1.27
      name: y
"""
    assert list(image_references(policy)) == ["busybox:1.36", "nginx:1.27"]


def test_prescan_finds_images_in_json() -> None:
    pretty = json.dumps({"spec": {"containers": [{"name": "a", "image": "a:1"}, {"image": "b/c:2"}]}}, indent=2)
    assert list(image_references(pretty.encode())) == ["a:1", "b/c:2"]
    compact = json.dumps({"items": [{"image": "x/y:1"}, {"image": "z"}]}, separators=(",", ":"))
    assert list(image_references(compact.encode())) == ["x/y:1", "z"]


def test_prescan_of_stdin_and_json_files_feeds_the_resolver(tmp_path: Path, calls: list[Any]) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "apps"},
           "spec": {"containers": [{"name": "x", "image": ALL}]}}  # fmt: skip
    code, report, _ = audit_json("--resolve-images", "-", stdin=json.dumps(pod))
    assert code == 1
    assert calls[0][0] == [ALL]
    assert rules(report) == {"p": {"GG101"}}


# --- Dockerfiles ----------------------------------------------------------------------------------------


def test_dockerfile_base_is_prescanned_and_resolved(tmp_path: Path, calls: list[Any]) -> None:
    docker = write(tmp_path, "Dockerfile", "ARG TAG=1\nFROM registry.example.com/app:${TAG}\nCMD x\n")
    twin = write(tmp_path, "void.Dockerfile", f"FROM {ALL}\nENV NVIDIA_VISIBLE_DEVICES=void\n")
    _, plain, _ = audit_json(docker, twin)
    assert rules(plain) == {}  # an ordinary base, not inspected: assumed clean
    code, report, _ = audit_json("--resolve-images", docker, twin)
    assert code == 1
    assert calls[0][0] == [ALL]
    assert rules(report) == {"Dockerfile": {"GG109"}}
    [f] = report["findings"]
    assert f["location"] == {"path": docker, "line": 2}
    assert f"base image {ALL}" in f["message"]


def test_dockerfile_on_a_failed_base_names_the_reason(tmp_path: Path, calls: list[Any]) -> None:
    docker = write(tmp_path, "Dockerfile", f"FROM {DENIED}\n")
    _, report, _ = audit_json("--resolve-images", docker)
    [f] = report["findings"]
    assert f["rule_id"] == "GG109"
    assert "could not be inspected: auth denied (401)" in f["message"]
