"""AuditSettings: GPU image families (GG108) and the config section loader."""

from __future__ import annotations

import pytest

from gpuguard.model.errors import InputError
from gpuguard.rules.settings import DEFAULT_TRUSTED_NAMESPACES, Allow, AuditSettings, load_settings

GPU_IMAGES = [
    "nvcr.io/nvidia/pytorch:24.01-py3",
    "nvcr.io/nvidia/tritonserver:24.05-py3",
    "nvcr.io/nim/meta/llama3-8b-instruct:1.0.0",
    "nvidia/cuda:12.4.1-base-ubuntu22.04",
    "docker.io/nvidia/cuda:12.4.1-runtime-ubuntu22.04",
    "mirror.example.com/nvidia/cuda:12.2.0-runtime-ubuntu22.04",
    "pytorch/pytorch:2.3.0-cuda12.1-cudnn8-runtime",
    "docker.io/pytorch/pytorch:latest",
    "tensorflow/tensorflow:2.15.0-gpu",
    "vllm/vllm-openai:v0.6.0",
    "ghcr.io/huggingface/text-generation-inference:2.0",
    "quay.io/jupyter/pytorch-notebook:cuda12-2024-05-20",
    "ollama/ollama:0.1.32",
    "rayproject/ray:2.9.0-gpu",
    "NVCR.IO/NVIDIA/CUDA:12.0",
]
OTHER_IMAGES = [
    "busybox:1.36",
    "nginx",
    "python:3.11-slim",
    "registry.example.com/team/proxy:2.1",
    "gcr.io/distroless/static:nonroot",
    "ubuntu:22.04",
    "quay.io/prometheus/node-exporter:v1.8.0",
    "",
]


@pytest.mark.parametrize("image", GPU_IMAGES)
def test_gpu_image_families(image: str) -> None:
    assert AuditSettings().is_gpu_image(image)


@pytest.mark.parametrize("image", OTHER_IMAGES)
def test_other_images(image: str) -> None:
    assert not AuditSettings().is_gpu_image(image)


def test_patterns_are_configurable() -> None:
    settings = load_settings({"gpuImages": ["registry.example.com/ml/*"], "extraGpuImages": ["*/team/proxy*"]})
    assert settings.is_gpu_image("registry.example.com/ml/trainer:1")
    assert settings.is_gpu_image("registry.example.com/team/proxy:2.1")
    assert not settings.is_gpu_image("nvcr.io/nvidia/pytorch:24.01-py3")
    assert settings.gpu_image_pattern("registry.example.com/ml/trainer:1") == "registry.example.com/ml/*"


def test_defaults_and_full_section() -> None:
    assert load_settings(None) == AuditSettings()
    assert AuditSettings().trusted_namespaces == DEFAULT_TRUSTED_NAMESPACES == (
        "gpu-operator", "gpu-operator-resources", "nvidia-gpu-operator")  # fmt: skip
    settings = load_settings(
        {
            "trustedNamespaces": ["nvidia"],
            "cdiAnnotationPrefixes": ["cdi.k8s.io/", "example.com/cdi/"],
            "exempt": [
                {"reason": "cluster DCGM exporter", "namespace": "monitoring", "serviceAccount": "dcgm-exporter"},
                {"reason": "HAMi scheduler", "labels": {"app": "hami"}, "image": "projecthami/*"},
            ],
        }
    )
    assert settings.trusted_namespaces == ("nvidia",)
    assert settings.cdi_annotation_prefixes == ("cdi.k8s.io/", "example.com/cdi/")
    assert settings.allow[0] == Allow("cluster DCGM exporter", namespace="monitoring", service_account="dcgm-exporter")
    assert settings.allowed("monitoring", "dcgm-exporter", {}, "anything") == "cluster DCGM exporter"
    assert settings.allowed("other", "dcgm-exporter", {}, "anything") is None
    assert settings.allowed("x", "default", {"app": "hami"}, "projecthami/hami:v2") == "HAMi scheduler"
    assert settings.allowed("x", "default", {"app": "hami"}, "evil/hami:v2") is None


@pytest.mark.parametrize(
    ("section", "where"),
    [
        ([], "rules"),
        ({"bogus": 1}, "rules.bogus"),
        ({"trustedNamespaces": "gpu-operator"}, "rules.trustedNamespaces"),
        ({"trustedNamespaces": ["ok", 3]}, "rules.trustedNamespaces[1]"),
        ({"gpuImages": [""]}, "rules.gpuImages[0]"),
        ({"exempt": {"reason": "x"}}, "rules.exempt"),
        ({"exempt": [{"namespace": "monitoring"}]}, "rules.exempt[0].reason"),
        ({"exempt": [{"reason": "x"}]}, "rules.exempt[0]"),
        ({"exempt": [{"reason": "x", "labels": {"app": 1}}]}, "rules.exempt[0].labels.app"),
        ({"exempt": [{"reason": "x", "namespace": "a", "sa": "b"}]}, "rules.exempt[0].sa"),
    ],
)
def test_bad_sections_name_the_field(section: object, where: str) -> None:
    with pytest.raises(InputError) as err:
        load_settings(section)
    assert err.value.where == where
