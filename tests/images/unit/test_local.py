"""Local sources: OCI layouts, OCI archives, docker save tars, built here with tarfile/json/hashlib."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpuguard.model.errors import InputError
from gpuguard.sources.images.resolver import ResolveOptions, resolve_images
from tests.images.unit import imagekit as kit

NOWHERE = "127.0.0.1:9"


def _resolve(refs: list[str], local: list[Path], tmp_path: Path, **kw: object):
    options = ResolveOptions(local=tuple(str(p) for p in local), cache_dir=str(tmp_path / "cache"), offline=True,
                             docker_config="/nonexistent", **kw)  # type: ignore[arg-type]  # fmt: skip
    return resolve_images(refs, options)


def test_oci_layout_directory(tmp_path: Path) -> None:
    cuda = kit.multi({"linux/amd64": ["NVIDIA_VISIBLE_DEVICES=all"], "linux/arm64": ["NVIDIA_VISIBLE_DEVICES=void"]})
    app = kit.single(["APP=1"])
    layout = kit.write_dir(tmp_path / "layout", kit.layout_files({"nvcr.io/nvidia/cuda:12": cuda, "myapp:1": app}))
    refs = ["nvcr.io/nvidia/cuda:12", "docker.io/library/myapp:1", "myapp:1", f"other.io/x@{app.root}", "myapp:2"]
    results, stats = _resolve(refs, [layout], tmp_path)
    assert results[refs[0]].env == ("NVIDIA_VISIBLE_DEVICES=all",)
    assert results[refs[0]].configs[0].source == f"oci-layout:{layout}"
    assert results[refs[0]].configs[0].digest == cuda.root
    assert results[refs[1]].env == results[refs[2]].env == ("APP=1",)
    assert results[refs[3]].env == ("APP=1",)  # by digest, whatever the name
    assert results[refs[4]].problem is not None  # not local, and offline: not in cache
    assert stats.requests == 0
    both, _ = _resolve(refs[:1], [layout], tmp_path, all_platforms=True)
    assert both[refs[0]].disagree


def test_oci_archive_and_bare_tag_names(tmp_path: Path) -> None:
    image = kit.single(["X=1"])
    files = kit.layout_files({"reg.io/team/x:1.0": image})
    archive = kit.write_tar(tmp_path / "x.tar.gz", files, mode="w:gz")
    results, _ = _resolve(["reg.io/team/x:1.0"], [archive], tmp_path)
    assert results["reg.io/team/x:1.0"].env == ("X=1",)
    assert results["reg.io/team/x:1.0"].configs[0].source == f"archive:{archive}"
    # skopeo-style ref.name "1.0" names no repository: only digests match
    bare = kit.write_tar(
        tmp_path / "bare.tar", kit.layout_files({"1.0": image}, ref_annotation="org.opencontainers.image.ref.name")
    )
    results, _ = _resolve(["x:1.0", f"x@{image.root}"], [bare], tmp_path)
    assert results["x:1.0"].problem is not None
    assert results[f"x@{image.root}"].env == ("X=1",)


def test_docker_save_archive(tmp_path: Path) -> None:
    files = kit.docker_save_files({"busybox:latest": ["PATH=/bin"], "nvcr.io/nvidia/cuda:9": ["CUDA_VERSION=9.0"]})
    files["repositories"] = b"{}"
    archive = kit.write_tar(tmp_path / "save.tar", files)
    refs = ["busybox", "nvcr.io/nvidia/cuda:9"]
    results, _ = _resolve(refs, [archive], tmp_path)
    assert results["busybox"].env == ("PATH=/bin",)
    assert results["busybox"].configs[0].digest is None
    assert results["nvcr.io/nvidia/cuda:9"].env == ("CUDA_VERSION=9.0",)


def test_first_local_source_wins(tmp_path: Path) -> None:
    a = kit.write_dir(tmp_path / "a", kit.layout_files({"app:1": kit.single(["FROM=a"])}))
    b = kit.write_tar(tmp_path / "b.tar", kit.docker_save_files({"app:1": ["FROM=b"]}))
    assert _resolve(["app:1"], [a, b], tmp_path)[0]["app:1"].env == ("FROM=a",)
    assert _resolve(["app:1"], [b, a], tmp_path)[0]["app:1"].env == ("FROM=b",)


def test_path_traversal_and_links_are_refused(tmp_path: Path) -> None:
    files = kit.docker_save_files({"evil:1": ["A=1"]})
    manifest = json.loads(files["manifest.json"])
    manifest.append({"Config": "../../etc/passwd", "RepoTags": ["evil:2"], "Layers": []})
    manifest.append({"Config": "/etc/passwd", "RepoTags": ["evil:3"], "Layers": []})
    manifest.append({"Config": "link.json", "RepoTags": ["evil:4"], "Layers": []})
    files["manifest.json"] = kit.dumps(manifest)
    files["../outside.json"] = b"{}"
    archive = kit.write_tar(tmp_path / "evil.tar", files, links={"link.json": "/etc/passwd"})
    refs = ["evil:1", "evil:2", "evil:3", "evil:4"]
    results, _ = _resolve(refs, [archive], tmp_path)
    assert results["evil:1"].env == ("A=1",)
    assert "refusing member name" in results["evil:2"].problem.reason  # type: ignore[union-attr]
    assert "refusing member name" in results["evil:3"].problem.reason  # type: ignore[union-attr]
    assert "not a regular file" in results["evil:4"].problem.reason  # type: ignore[union-attr]
    assert not (tmp_path / "outside.json").exists()


def test_oversize_members_are_refused(tmp_path: Path) -> None:
    big = kit.single(["A=1"], padding=5000)
    layout = kit.write_tar(tmp_path / "big.tar", kit.layout_files({"big:1": big}))
    results, _ = _resolve(["big:1"], [layout], tmp_path, max_config_bytes=4096)
    assert results["big:1"].problem.reason == "config larger than 4096 bytes"  # type: ignore[union-attr]
    save = kit.write_tar(tmp_path / "save.tar", kit.docker_save_files({"big:2": ["B=" + "x" * 5000]}))
    results, _ = _resolve(["big:2"], [save], tmp_path, max_config_bytes=4096)
    assert results["big:2"].problem.reason == "config larger than 4096 bytes"  # type: ignore[union-attr]


def test_tampered_blob_is_a_digest_mismatch(tmp_path: Path) -> None:
    image = kit.single(["NVIDIA_VISIBLE_DEVICES=all"])
    files = kit.layout_files({"app:1": image})
    config = next(d for d, data in image.blobs.items() if b"Env" in data)
    files[f"blobs/sha256/{config.split(':')[1]}"] = kit.config_bytes(["NVIDIA_VISIBLE_DEVICES=void"])
    layout = kit.write_dir(tmp_path / "layout", files)
    results, _ = _resolve(["app:1"], [layout], tmp_path)
    assert results["app:1"].problem.reason == "config digest mismatch"  # type: ignore[union-attr]
    # a manifest tampered with
    files = kit.layout_files({"app:1": image})
    files[f"blobs/sha256/{image.root.split(':')[1]}"] = image.root_bytes + b" "
    layout2 = kit.write_dir(tmp_path / "layout2", files)
    results, _ = _resolve(["app:1"], [layout2], tmp_path)
    assert results["app:1"].problem.reason == "manifest digest mismatch"  # type: ignore[union-attr]


def test_symlinked_blob_outside_the_layout(tmp_path: Path) -> None:
    image = kit.single(["A=1"])
    files = kit.layout_files({"app:1": image})
    config = next(d for d, data in image.blobs.items() if b"Env" in data)
    name = f"blobs/sha256/{config.split(':')[1]}"
    outside = tmp_path / "outside"
    outside.write_bytes(files.pop(name))
    layout = kit.write_dir(tmp_path / "layout", files)
    (layout / name).symlink_to(outside)
    results, _ = _resolve(["app:1"], [layout], tmp_path)
    assert "points outside the layout" in results["app:1"].problem.reason  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p, "no such file"),
        (lambda p: (p.mkdir(), p)[1], "not an OCI image layout"),
        (lambda p: (p.write_bytes(b"not a tar"), p)[1], "cannot read image archive"),
        (lambda p: kit.write_tar(p, {"hello.txt": b"hi"}), "not an image archive"),
        (lambda p: kit.write_tar(p, {"index.json": b"{"}), "index.json is not valid JSON"),
        (lambda p: kit.write_tar(p, {"manifest.json": b"{}"}), "manifest.json is not a list"),
    ],
)
def test_unreadable_local_sources_are_input_errors(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    path = make(tmp_path / "source")
    with pytest.raises(InputError, match=message):
        _resolve(["app:1"], [path], tmp_path)


def test_archive_members_are_read_on_demand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tarfile

    image = kit.single(["A=1"])
    files = kit.layout_files({"app:1": image})
    files["huge-layer.bin"] = b"\0" * (1 << 20)
    archive = kit.write_tar(tmp_path / "a.tar", files)
    read: list[str] = []
    original = tarfile.TarFile.extractfile

    def spy(self, member):  # type: ignore[no-untyped-def]
        read.append(member.name if isinstance(member, tarfile.TarInfo) else member)
        return original(self, member)

    monkeypatch.setattr(tarfile.TarFile, "extractfile", spy)
    monkeypatch.setattr(tarfile.TarFile, "extractall", lambda *a, **k: pytest.fail("extracted everything"))
    assert _resolve(["app:1"], [archive], tmp_path)[0]["app:1"].env == ("A=1",)
    assert "huge-layer.bin" not in read
    assert len(read) == 3  # index.json, the manifest, the config
