"""Air-gapped inspection: OCI layouts, OCI archives and ``docker save`` tars written by the tests
(``registry_harness``), read by ``resolve_images(local=...)`` and ``gpuguard audit
--image-source``. No registry is involved (these run without docker-registry), and no request
is sent: every reference below names a registry that does not exist."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gpuguard.cli.main import cli
from gpuguard.model.image import ImageResolution
from gpuguard.sources.images.resolver import ResolveOptions, Stats, resolve_images
from tests.images.conftest import ENV_ALL, ENV_ARM, ENV_LEGACY, ENV_VOID
from tests.images.registry_harness import (
    BuiltImage,
    build_image,
    write_docker_save_tar,
    write_oci_archive,
    write_oci_layout,
)

NOWHERE = "registry.invalid"  # RFC 2606: never resolves
BOTH = ("linux/amd64", "linux/arm64")


@pytest.fixture
def built() -> dict[str, BuiltImage]:
    return {
        "all": build_image(ENV_ALL, label="local-all"),
        "void": build_image(ENV_VOID, label="local-void", media="docker"),
        "legacy": build_image(ENV_LEGACY, label="local-legacy"),
        "multi": build_image({"linux/amd64": ENV_ALL, "linux/arm64": ENV_ARM}, platforms=BOTH, label="local-multi"),
    }


def resolve(
    refs: list[str], tmp_path: Path, *sources: Path, **options: Any
) -> tuple[dict[str, ImageResolution], Stats]:
    empty = tmp_path / "no-docker-config"
    empty.mkdir(exist_ok=True)
    opts = ResolveOptions(
        local=tuple(str(s) for s in sources), cache_dir=str(tmp_path / "cache"), docker_config=str(empty),
        offline=True, **options,
    )  # fmt: skip
    return resolve_images(refs, opts)


def env(res: ImageResolution) -> tuple[str, ...] | None:
    assert res.problem is None, res.problem
    return res.env


def test_oci_layout(tmp_path: Path, built: dict[str, BuiltImage]) -> None:
    layout = write_oci_layout(tmp_path / "layout", {
        f"{NOWHERE}/acme/trainer:1": built["all"], f"{NOWHERE}/acme/inference:1": built["void"],
        f"{NOWHERE}/ml/old:1": built["legacy"], f"{NOWHERE}/acme/multi:1": built["multi"],
    })  # fmt: skip
    refs = [f"{NOWHERE}/{name}:1" for name in ("acme/trainer", "acme/inference", "ml/old", "acme/multi")]
    found, stats = resolve(refs, tmp_path, layout)
    assert [env(found[r]) for r in refs] == [ENV_ALL, ENV_VOID, ENV_LEGACY, ENV_ALL]
    assert {c.source for r in refs for c in found[r].configs} == {f"oci-layout:{layout}"}
    assert found[refs[0]].configs[0].digest == built["all"].digest
    assert stats.requests == 0


def test_oci_layout_all_platforms_disagree(tmp_path: Path, built: dict[str, BuiltImage]) -> None:
    layout = write_oci_layout(tmp_path / "layout", {f"{NOWHERE}/acme/multi:1": built["multi"]})
    found, _ = resolve([f"{NOWHERE}/acme/multi:1"], tmp_path, layout, all_platforms=True)
    res = found[f"{NOWHERE}/acme/multi:1"]
    assert {c.platform: c.env for c in res.configs} == {"linux/amd64": ENV_ALL, "linux/arm64": ENV_ARM}
    assert res.disagree


def test_digest_reference_matches_whatever_the_name(tmp_path: Path, built: dict[str, BuiltImage]) -> None:
    layout = write_oci_layout(tmp_path / "layout", {"v1": built["void"]})  # a bare tag names no repository
    by_digest = f"{NOWHERE}/any/name@{built['void'].digest}"
    by_tag = f"{NOWHERE}/any/name:v1"
    found, _ = resolve([by_digest, by_tag], tmp_path, layout)
    assert env(found[by_digest]) == ENV_VOID
    assert found[by_tag].problem is not None  # offline, and not in the layout under that name


def test_oci_archive(tmp_path: Path, built: dict[str, BuiltImage]) -> None:
    archive = write_oci_archive(tmp_path / "images.tar", {f"{NOWHERE}/acme/trainer:1": built["all"]})
    found, stats = resolve([f"{NOWHERE}/acme/trainer:1"], tmp_path, archive)
    assert env(found[f"{NOWHERE}/acme/trainer:1"]) == ENV_ALL
    assert found[f"{NOWHERE}/acme/trainer:1"].configs[0].source == f"archive:{archive}"
    assert stats.requests == 0


def test_docker_save_archive(tmp_path: Path, built: dict[str, BuiltImage]) -> None:
    archive = write_docker_save_tar(tmp_path / "save.tar", {
        "acme/app:1": built["legacy"], "acme/multi:1": built["multi"]
    })
    found, _ = resolve(["acme/app:1", "docker.io/acme/multi:1"], tmp_path, archive)
    assert env(found["acme/app:1"]) == ENV_LEGACY
    assert env(found["docker.io/acme/multi:1"]) == ENV_ALL  # docker save holds the amd64 image


def test_tampered_layout_config_is_a_problem(tmp_path: Path, built: dict[str, BuiltImage]) -> None:
    """The layout's config blob of the `all` image replaced by the `void` image's config: the
    bytes no longer match the digest they are stored under."""
    layout = write_oci_layout(tmp_path / "layout", {f"{NOWHERE}/acme/trainer:1": built["all"]})
    config = built["all"].platforms[0].config
    (layout / "blobs" / "sha256" / config.digest.split(":")[1]).write_bytes(built["void"].platforms[0].config.data)
    found, _ = resolve([f"{NOWHERE}/acme/trainer:1"], tmp_path, layout)
    res = found[f"{NOWHERE}/acme/trainer:1"]
    assert res.problem is not None
    assert "digest" in res.problem.reason
    assert res.env is None


def test_tampered_docker_save_config_is_a_problem(tmp_path: Path, built: dict[str, BuiltImage]) -> None:
    """A classic ``docker save`` names the config file by its sha256 (the image ID, which
    ``docker load`` checks): content that does not hash to the name is not the image."""
    archive = write_docker_save_tar(tmp_path / "save.tar", {"acme/app:1": built["all"]})
    tampered = tmp_path / "tampered.tar"
    with tarfile.open(archive) as src, tarfile.open(tampered, "w") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name.endswith(".json") and member.name != "manifest.json":
                data = data.replace(b"NVIDIA_VISIBLE_DEVICES=all", b"NVIDIA_VISIBLE_DEVICES=void")
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
    found, _ = resolve(["acme/app:1"], tmp_path, tampered)
    assert found["acme/app:1"].problem is not None
    assert found["acme/app:1"].env is None


def test_audit_with_image_source_offline(tmp_path: Path, built: dict[str, BuiltImage]) -> None:
    layout = write_oci_layout(tmp_path / "layout", {
        f"{NOWHERE}/acme/trainer:1": built["all"], f"{NOWHERE}/acme/inference:1": built["void"],
    })  # fmt: skip
    pods = tmp_path / "pods.yaml"
    pods.write_text("---\n".join(
        f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: team-a}}\n"
        f"spec:\n  containers:\n  - name: main\n    image: {NOWHERE}/{repo}:1\n"
        for name, repo in (("exposed", "acme/trainer"), ("safe", "acme/inference"), ("unknown", "acme/missing"))
    ))  # fmt: skip
    result = CliRunner(env={"DOCKER_CONFIG": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "xdg")}).invoke(
        cli, ["audit", "--format", "json", "--resolve-images", "--offline", "--image-source", str(layout), str(pods)]
    )
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    got = {(f["resource"]["name"], f["rule_id"]) for f in report["findings"]}
    assert got == {("exposed", "GG101"), ("unknown", "GG108")}
