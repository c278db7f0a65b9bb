"""Tiny image builders for the unit tests: configs, manifests, indexes, layouts and tars."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


def digest(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def dumps(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


@dataclass
class Image:
    """Blobs by digest plus the root (manifest or index) digest."""

    blobs: dict[str, bytes] = field(default_factory=dict)
    root: str = ""

    def add(self, data: bytes, algorithm: str = "sha256") -> str:
        d = digest(data, algorithm)
        self.blobs[d] = data
        return d

    @property
    def root_bytes(self) -> bytes:
        return self.blobs[self.root]


def config_bytes(env: list[str] | tuple[str, ...], platform: str = "linux/amd64", padding: int = 0) -> bytes:
    os_name, arch, *variant = platform.split("/")
    doc: dict[str, Any] = {"architecture": arch, "os": os_name, "config": {"Env": list(env)}, "rootfs": {}}
    if variant:
        doc["variant"] = variant[0]
    if padding:
        doc["padding"] = "x" * padding
    return dumps(doc)


def add_manifest(image: Image, env: list[str] | tuple[str, ...], platform: str = "linux/amd64", **kw: Any) -> str:
    config = config_bytes(env, platform, kw.pop("padding", 0))
    config_digest = image.add(config, kw.pop("config_algorithm", "sha256"))
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
        "layers": [],
    }
    return image.add(dumps(manifest))


def single(env: list[str] | tuple[str, ...], platform: str = "linux/amd64", **kw: Any) -> Image:
    image = Image()
    image.root = add_manifest(image, env, platform, **kw)
    return image


def multi(envs: dict[str, list[str] | tuple[str, ...]], extra: list[dict[str, Any]] | None = None) -> Image:
    image = Image()
    entries = []
    for platform, env in envs.items():
        d = add_manifest(image, env, platform)
        os_name, arch, *variant = platform.split("/")
        plat: dict[str, Any] = {"os": os_name, "architecture": arch}
        if variant:
            plat["variant"] = variant[0]
        entries.append({"mediaType": OCI_MANIFEST, "digest": d, "size": len(image.blobs[d]), "platform": plat})
    entries += extra or []
    image.root = image.add(dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}))
    return image


def layout_files(images: dict[str, Image], *, ref_annotation: str = "io.containerd.image.name") -> dict[str, bytes]:
    """The files of an OCI layout holding ``images`` (name -> image)."""
    files: dict[str, bytes] = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}'}
    entries = []
    for name, image in images.items():
        for d, data in image.blobs.items():
            algorithm, hexdigest = d.split(":")
            files[f"blobs/{algorithm}/{hexdigest}"] = data
        media = OCI_INDEX if b'"manifests"' in image.root_bytes else OCI_MANIFEST
        entries.append(
            {
                "mediaType": media,
                "digest": image.root,
                "size": len(image.root_bytes),
                "annotations": {ref_annotation: name},
            }
        )
    files["index.json"] = dumps({"schemaVersion": 2, "manifests": entries})
    return files


def write_dir(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def write_tar(path: Path, files: dict[str, bytes], *, links: dict[str, str] | None = None, mode: str = "w") -> Path:
    with tarfile.open(path, mode) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return path


def docker_save_files(tags: dict[str, list[str]]) -> dict[str, bytes]:
    """A legacy ``docker save`` archive: ``<hex>.json`` configs and ``manifest.json``."""
    files: dict[str, bytes] = {}
    manifest = []
    for tag, env in tags.items():
        config = config_bytes(env)
        name = f"{digest(config).split(':')[1]}.json"
        files[name] = config
        manifest.append({"Config": name, "RepoTags": [tag], "Layers": []})
    files["manifest.json"] = dumps(manifest)
    return files
