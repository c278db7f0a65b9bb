"""What an audit may be told about the cluster: trusted namespaces, allow-lists, GPU image families.

``AuditSettings`` is plain frozen data with the defaults an unconfigured audit
uses; ``load_settings`` reads the ``rules`` section of a YAML config file (keys
in camelCase, like the rest of gpuguard's inputs) and names the bad field.

The GPU image families feed GG108: an image that was not inspected but whose
name says it is a CUDA/NGC-based GPU image very likely sets
``NVIDIA_VISIBLE_DEVICES=all`` in its config, so its exposure is *unknown*
rather than assumed absent. Patterns are shell globs (``*`` crosses ``/`` and
``:``) matched against the lower-cased image reference, with and without
Docker Hub's implicit ``docker.io/`` and ``library/`` prefixes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import translate

from gpuguard.model.errors import InputError, type_name

DEFAULT_TRUSTED_NAMESPACES = ("gpu-operator", "gpu-operator-resources", "nvidia-gpu-operator")
DEFAULT_CDI_ANNOTATION_PREFIXES = ("cdi.k8s.io/", "nvidia.cdi.k8s.io/")

# Image families known to set NVIDIA_VISIBLE_DEVICES (or to be legacy CUDA images, which the
# toolkit reads as "all") in their image config. Each is a glob over the image reference.
DEFAULT_GPU_IMAGES: tuple[str, ...] = (
    "nvcr.io/nvidia/*",  # NGC: CUDA, PyTorch, TensorFlow, Triton, NeMo, TensorRT(-LLM), RAPIDS, ...
    "nvcr.io/nim/*",  # NVIDIA NIM microservices
    "nvidia/*",  # Docker Hub nvidia/cuda, nvidia/cudagl, nvidia/dcgm-exporter, ...
    "*/nvidia/cuda*",  # mirrors of nvidia/cuda
    "*cuda*",  # any image or tag that names CUDA (…/cuda:12.4, pytorch-notebook:cuda12-…)
    "pytorch/pytorch*",  # official PyTorch images (CUDA runtime/devel tags)
    "*/pytorch/pytorch*",
    "tensorflow/tensorflow*",  # official TensorFlow images (-gpu tags are CUDA-based)
    "*/tensorflow/tensorflow*",
    "*tritonserver*",  # Triton Inference Server and its mirrors
    "*vllm*",  # vLLM (vllm/vllm-openai) and derived images
    "huggingface/text-generation-inference*",  # TGI
    "*/huggingface/text-generation-inference*",
    "*sglang*",  # SGLang (lmsysorg/sglang)
    "ollama/ollama*",  # sets NVIDIA_VISIBLE_DEVICES=all itself
    "*/ollama/ollama*",
    "rapidsai/*",  # RAPIDS
    "*/rapidsai/*",
    "*deepspeed*",
    "*:*gpu*",  # a tag that says gpu (tensorflow:2.15.0-gpu, rayproject/ray:2.9.0-gpu)
)

_HUB_PREFIXES = ("docker.io/library/", "index.docker.io/library/", "docker.io/", "index.docker.io/", "library/")


@dataclass(frozen=True, slots=True)
class Allow:
    """An allow-list entry: every field given must match; ``reason`` is what the report shows."""

    reason: str
    namespace: str | None = None
    service_account: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    image: str | None = None  # a glob over the image reference

    def matches_pod(self, namespace: str, service_account: str, labels: Mapping[str, str]) -> bool:
        if self.namespace is not None and self.namespace != namespace:
            return False
        if self.service_account is not None and self.service_account != service_account:
            return False
        return all(labels.get(k) == v for k, v in self.labels.items())


@dataclass(frozen=True, slots=True)
class AuditSettings:
    """Settings the rules read; the defaults fit a GPU Operator install in its usual namespace."""

    trusted_namespaces: tuple[str, ...] = DEFAULT_TRUSTED_NAMESPACES
    allow: tuple[Allow, ...] = ()
    cdi_annotation_prefixes: tuple[str, ...] = DEFAULT_CDI_ANNOTATION_PREFIXES
    gpu_images: tuple[str, ...] = DEFAULT_GPU_IMAGES
    _gpu_image_re: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _allow_image_res: tuple[re.Pattern[str] | None, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Compiled once per settings object: is_gpu_image runs for every uninspected image.
        object.__setattr__(self, "_gpu_image_re", _compile(self.gpu_images))
        object.__setattr__(
            self, "_allow_image_res", tuple(None if a.image is None else _compile((a.image,)) for a in self.allow)
        )

    def is_trusted(self, namespace: str) -> bool:
        return namespace in self.trusted_namespaces

    def is_gpu_image(self, image: str) -> bool:
        """Whether ``image`` belongs to a GPU software family that sets NVIDIA_VISIBLE_DEVICES."""
        return _image_match(self._gpu_image_re, image)

    def gpu_image_pattern(self, image: str) -> str | None:
        """The first pattern that matches ``image``, for messages (slow path, only when reporting)."""
        for pattern in self.gpu_images:
            if _image_match(_compile((pattern,)), image):
                return pattern
        return None

    def allowed(self, namespace: str, service_account: str, labels: Mapping[str, str], image: str) -> str | None:
        """The reason of the first allow-list entry that matches, else None."""
        for entry, image_re in zip(self.allow, self._allow_image_res, strict=True):
            if not entry.matches_pod(namespace, service_account, labels):
                continue
            if image_re is not None and not _image_match(image_re, image):
                continue
            return entry.reason
        return None


def _compile(patterns: tuple[str, ...]) -> re.Pattern[str]:
    if not patterns:
        return re.compile(r"(?!)")
    return re.compile("|".join(f"(?:{translate(p.lower())})" for p in patterns))


def _image_match(pattern: re.Pattern[str], image: str) -> bool:
    ref = image.strip().lower()
    if not ref:
        return False
    if pattern.match(ref):
        return True
    for prefix in _HUB_PREFIXES:
        if ref.startswith(prefix):
            return pattern.match(ref[len(prefix) :]) is not None
    if "/" not in ref:  # "ubuntu:22.04" is docker.io/library/ubuntu:22.04
        return pattern.match("docker.io/library/" + ref) is not None
    if "." not in ref.split("/", 1)[0] and ":" not in ref.split("/", 1)[0]:
        return pattern.match("docker.io/" + ref) is not None
    return False


# --- loading a config section ------------------------------------------------------------------

_KEYS = frozenset({"trustedNamespaces", "exempt", "cdiAnnotationPrefixes", "gpuImages", "extraGpuImages"})
_ALLOW_KEYS = frozenset({"reason", "namespace", "serviceAccount", "labels", "image"})


def load_settings(mapping: object, where: str = "rules") -> AuditSettings:
    """``AuditSettings`` from a config section; absent keys keep their defaults.

    Keys: ``trustedNamespaces`` (replaces the defaults), ``exempt`` (a list of
    ``{reason, namespace?, serviceAccount?, labels?, image?}``), ``cdiAnnotationPrefixes``,
    ``gpuImages`` (replaces the default list) and ``extraGpuImages`` (added to it).
    Raises ``InputError`` naming the field.
    """
    if mapping is None:
        return AuditSettings()
    if not isinstance(mapping, Mapping):
        raise InputError(where, f"expected a mapping, got {type_name(mapping)}")
    for key in mapping:
        if key not in _KEYS:
            raise InputError(f"{where}.{key}", f"unknown key (expected one of {', '.join(sorted(_KEYS))})")
    defaults = AuditSettings()
    trusted = _strings(mapping, "trustedNamespaces", where, defaults.trusted_namespaces)
    prefixes = _strings(mapping, "cdiAnnotationPrefixes", where, defaults.cdi_annotation_prefixes)
    images = _strings(mapping, "gpuImages", where, defaults.gpu_images)
    images += tuple(p for p in _strings(mapping, "extraGpuImages", where, ()) if p not in images)
    return AuditSettings(
        trusted_namespaces=trusted,
        allow=_allow_list(mapping.get("exempt"), f"{where}.exempt"),
        cdi_annotation_prefixes=prefixes,
        gpu_images=images,
    )


def _strings(mapping: Mapping[str, object], key: str, where: str, default: tuple[str, ...]) -> tuple[str, ...]:
    value = mapping.get(key)
    if value is None:
        return default
    if not isinstance(value, list | tuple):
        raise InputError(f"{where}.{key}", f"expected a list of strings, got {type_name(value)}")
    out: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise InputError(f"{where}.{key}[{i}]", f"expected a non-empty string, got {type_name(item)}")
        out.append(item.strip())
    return tuple(out)


def _opt_text(entry: Mapping[str, object], key: str, where: str) -> str | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{where}.{key}", f"expected a non-empty string, got {type_name(value)}")
    return value.strip()


def _allow_list(value: object, where: str) -> tuple[Allow, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise InputError(where, f"expected a list of {{reason, namespace, serviceAccount, labels, image}}, "
                         f"got {type_name(value)}")  # fmt: skip
    out: list[Allow] = []
    for i, entry in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(entry, Mapping):
            raise InputError(at, f"expected a mapping, got {type_name(entry)}")
        for key in entry:
            if key not in _ALLOW_KEYS:
                raise InputError(f"{at}.{key}", f"unknown key (expected one of {', '.join(sorted(_ALLOW_KEYS))})")
        reason = _opt_text(entry, "reason", at)
        if reason is None:
            raise InputError(f"{at}.reason", "required: say why this workload may reach GPUs")
        labels = entry.get("labels")
        if labels is None:
            labels = {}
        if not isinstance(labels, Mapping):
            raise InputError(f"{at}.labels", f"expected a mapping of strings, got {type_name(labels)}")
        for k, v in labels.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise InputError(f"{at}.labels.{k}", f"expected a string value (quote it), got {type_name(v)}")
        allow = Allow(
            reason=reason,
            namespace=_opt_text(entry, "namespace", at),
            service_account=_opt_text(entry, "serviceAccount", at),
            labels=dict(labels),
            image=_opt_text(entry, "image", at),
        )
        if allow.namespace is None and allow.service_account is None and not allow.labels and allow.image is None:
            raise InputError(at, "an exempt entry must name at least one of namespace, serviceAccount, labels, image")
        out.append(allow)
    return tuple(out)
