"""Image inspection for the audit: pre-scan the references, resolve them up front, feed their env in.

Why up front: workloads are streamed once, but registries answer slowly, so
every image reference (YAML ``image:`` and JSON ``"image":`` values, a
superset is fine) and every ``kubernetes.io/dockerconfigjson`` Secret (the
pull credentials) is found by a byte scan that rides on the node pre-scan's
read, then all references are resolved concurrently by
``sources.images.resolver`` before the stream starts.  An image that could
not be inspected stays unknown with its reason (GG108 names it), never
"sets nothing".  Secret contents are kept in memory for the resolver only.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from gpuguard.engine.toolkit.envvars import NVD, is_legacy_image, parse_env
from gpuguard.model.image import DEFAULT_PLATFORM, ImageResolution
from gpuguard.rules.images import AssumedImageEnv as ImageEnv
from gpuguard.rules.settings import AuditSettings
from gpuguard.sources.documents import load_documents
from gpuguard.sources.kubernetes import objects

PULL_SECRET_TYPES = {"kubernetes.io/dockerconfigjson": ".dockerconfigjson", "kubernetes.io/dockercfg": ".dockercfg"}
NOT_SCANNED = "was not found by the pre-scan of the inputs, so it was not inspected"
MAX_LISTED = 10  # failed images named in the report header

_IMAGE = re.compile(
    rb"""(?:^|[\s{,\[])["']?image["']?[ \t]*:[ \t]*(?:&[^\s]+[ \t]+)?(?:!!str[ \t]+)?"""
    rb"""(?P<v>"(?:[^"\\\n]|\\.)*"|'(?:[^'\n]|'')*'|[^\s"'#,{}\[\]&*!|>][^\s,{}\[\]#]*)""",
    re.M,
)
_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@+-]*")
_SECRET_MARKERS = (b"dockerconfigjson", b"dockercfg")


@dataclass(frozen=True, slots=True)
class ImageOptions:
    """What ``--resolve-images`` and its companions asked for."""

    resolve: bool = False
    platform: str = DEFAULT_PLATFORM
    all_platforms: bool = False
    auth_files: tuple[str, ...] = ()
    insecure_registries: tuple[str, ...] = ()
    ca_file: str | None = None
    cache_dir: str | None = None
    offline: bool = False
    sources: tuple[str, ...] = ()  # --image-source: OCI layouts, docker-save / OCI archives


# --- pre-scan ---------------------------------------------------------------------------------------------


def image_references(data: bytes) -> Iterator[str]:
    """Values of ``image:`` keys (YAML, JSON, flow style) that look like image references.

    A block-style ``image:`` with a ``repository:`` or ``version:`` sibling is
    a GPU Operator or Helm component name (``image: gpu-operator``), not a
    reference a container runs: left out, so it costs no registry request.
    """
    if b"image" not in data:  # memchr-fast: most windows of unrelated files stop here
        return
    for m in _IMAGE.finditer(data):
        if _component_name(data, m.start("v")):
            continue
        raw = m.group("v").decode("utf-8", "replace")
        if raw.startswith('"'):
            try:
                raw = json.loads(raw)
            except ValueError:
                continue
        elif raw.startswith("'"):
            raw = raw[1:-1].replace("''", "'")
        raw = raw.strip()
        if len(raw) < 512 and _REFERENCE.fullmatch(raw):
            yield raw


_SIBLING_WINDOW = 4096  # bytes looked at either side of an image: key for its siblings
_COMPONENT_KEY = re.compile(rb"(?:repository|version)[ \t]*:")


def _component_name(data: bytes, at: int) -> bool:
    """Whether the block-style ``image:`` key whose value starts at ``at`` has a repository/version sibling."""
    start = data.rfind(b"\n", 0, at) + 1
    line = data[start:at]
    key = line.lstrip(b" -")
    column = len(line) - len(key)
    if not key.startswith(b"image") or b"{" in line:
        return False  # JSON or flow style: kept
    for part in (data[max(0, start - _SIBLING_WINDOW) : start].split(b"\n")[::-1],
                 data[at : at + _SIBLING_WINDOW].split(b"\n")[1:]):  # fmt: skip
        for other in part:
            body = other.lstrip(b" ")
            indent = len(other) - len(body)
            if not body or body.startswith(b"#"):
                continue
            if body.startswith(b"- ") and indent + 2 == column and _COMPONENT_KEY.match(body[2:]):
                return True
            if indent < column or body.startswith(b"- "):
                break  # the mapping ends: a parent key or the next list item
            if indent == column and _COMPONENT_KEY.match(body):
                return True
    return False


def pull_secrets(data: bytes, name: str) -> Iterator[Mapping[str, Any]]:
    """The docker config of each pull Secret in ``data`` (``{"auths": ...}``); bad ones are skipped.

    Only windows that name a pull Secret type are parsed.
    """
    if not any(marker in data for marker in _SECRET_MARKERS):
        return
    for doc in load_documents(data, name, keep_kind=lambda k: k == "Secret" or k.endswith("List")):
        if doc.error is not None:
            continue
        try:
            items = list(objects(doc.obj, doc.where))
        except ValueError:
            continue
        for item, _ in items:
            config = docker_config(item)
            if config is not None:
                yield config


def docker_config(obj: object) -> Mapping[str, Any] | None:
    if not isinstance(obj, Mapping) or obj.get("kind") != "Secret":
        return None
    key = PULL_SECRET_TYPES.get(str(obj.get("type")))
    if key is None:
        return None
    text: str | None = None
    string_data, data = obj.get("stringData"), obj.get("data")
    if isinstance(string_data, Mapping) and isinstance(string_data.get(key), str):
        text = string_data[key]
    elif isinstance(data, Mapping) and isinstance(data.get(key), str):
        try:
            text = base64.b64decode(data[key], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
    if text is None:
        return None
    try:
        config = json.loads(text)
    except ValueError:
        return None
    if not isinstance(config, Mapping):
        return None
    return config if key == ".dockerconfigjson" else {"auths": config}


@dataclass(slots=True)
class ImageScan:
    """What the pre-scan found: image references in input order, and pull credentials."""

    references: dict[str, None] = field(default_factory=dict)
    secrets: list[Mapping[str, Any]] = field(default_factory=list)

    def window(self, path: str, data: bytes) -> None:
        for ref in image_references(data):
            self.references.setdefault(ref, None)
        name = "<stdin>" if path == "-" else path
        for config in pull_secrets(data, name):
            self.add_secret(config)

    def add(self, references: Iterable[str]) -> None:
        for ref in references:
            self.references.setdefault(ref, None)

    def add_secret(self, config: Mapping[str, Any]) -> None:
        """A pull Secret's docker config (``{"auths": ...}``), once."""
        if config not in self.secrets:
            self.secrets.append(config)


# --- resolution --------------------------------------------------------------------------------------------


def resolve(scan: ImageScan, options: ImageOptions) -> tuple[dict[str, ImageResolution], int | None]:
    """Every reference the pre-scan found, resolved concurrently by the registry client; and its request count."""
    from gpuguard.sources.images import resolver  # noqa: PLC0415 - the HTTP stack loads only when asked

    resolve_options = resolver.ResolveOptions(
        platform=options.platform,
        all_platforms=options.all_platforms,
        auth_files=options.auth_files,
        pull_secrets=tuple(scan.secrets),
        insecure_registries=options.insecure_registries,
        ca_file=options.ca_file,
        cache_dir=options.cache_dir,
        offline=options.offline,
        local=options.sources,
    )
    found, stats = resolver.resolve_images(list(scan.references), resolve_options)
    requests = getattr(stats, "requests", None)
    return dict(found), requests if isinstance(requests, int) else None


def _reading(env: tuple[str, ...]) -> tuple[str | None, bool]:
    """What the toolkit reads of one platform's env: NVIDIA_VISIBLE_DEVICES and whether it is legacy."""
    values, _ = parse_env(env)
    return values.get(NVD), is_legacy_image(values)


def _shown(value: str | None, legacy: bool) -> str:
    if value is None:
        return "unset (legacy CUDA image: all)" if legacy else "unset"
    return value


def env_of(res: ImageResolution) -> tuple[tuple[str, ...] | None, str | None]:
    """(env, None) when known; (None, why) when not: a problem, or platforms that disagree on exposure.

    Platforms whose env differs only in variables the toolkit does not read
    (PATH, LD_LIBRARY_PATH) agree as far as exposure goes: the first is used.
    """
    if res.problem is not None:
        return None, f"could not be inspected: {res.problem.reason}"
    if not res.configs:
        return None, "could not be inspected: no image config for the platform"
    readings = [_reading(c.env) for c in res.configs]
    if len(set(readings)) == 1:
        return res.configs[0].env, None
    shown = "; ".join(f"{c.platform}: {_shown(*r)}" for c, r in zip(res.configs, readings, strict=True))
    return None, f"has platforms that set different {NVD} ({shown})"


class ResolvedImages(ImageEnv):
    """Image env from the resolver: known env, or unknown with the reason the report names."""

    def __init__(
        self, settings: AuditSettings, resolutions: Mapping[str, ImageResolution], requests: int | None = None
    ) -> None:
        super().__init__(settings)
        self.resolutions = resolutions
        self.requests = requests
        self.envs: dict[str, tuple[str, ...] | None] = {}
        self.problems: dict[str, str] = {}
        for ref, res in resolutions.items():
            env, why = env_of(res)
            self.envs[ref] = env
            if why is not None:
                self.problems[ref] = why
        self.used: dict[str, None] = {}

    def get(self, image: str, default: Any = None) -> Any:
        self.used.setdefault(image, None)
        if image not in self.envs:
            self.envs[image] = None
            self.problems[image] = NOT_SCANNED
        return self.envs[image]

    def __iter__(self) -> Iterator[str]:
        return (i for i, env in self.envs.items() if env is not None)

    def __len__(self) -> int:
        return sum(1 for env in self.envs.values() if env is not None)

    def assumed(self) -> int:
        return 0

    def notes(self) -> list[str]:
        """Report header lines: how many images were inspected, from the cache, and which failed."""
        used = [i for i in self.used if i in self.resolutions or i in self.problems]
        inspected = [i for i in used if self.envs.get(i) is not None]
        cached = sum(1 for i in inspected if _sources(self.resolutions.get(i)) == {"cache"})
        local = sum(1 for i in inspected if _sources(self.resolutions.get(i)) - {"cache", "registry"})
        shown = f"{local} from --image-source, " if local else ""
        cost = f", {self.requests} registry requests" if self.requests is not None else ""
        out = [f"{len(inspected)} of {len(used)} images inspected ({shown}{cached} from the cache{cost})"]
        failed = [i for i in used if i in self.problems]
        if failed:
            shown = ", ".join(f"{i} {self.problems[i]}" for i in failed[:MAX_LISTED])
            more = f" and {len(failed) - MAX_LISTED} more" if len(failed) > MAX_LISTED else ""
            out.append(f"{len(failed)} images not inspected (their exposure stays unknown): {shown}{more}")
        return out


def _sources(res: ImageResolution | None) -> set[str]:
    """Where an image's configs came from: "registry", "cache", or a local source's label."""
    return {c.source for c in res.configs} if res is not None else set()
