"""GG109: a Dockerfile's final image sets or inherits a GPU-exposing NVIDIA_VISIBLE_DEVICES; each case has a twin."""

from __future__ import annotations

import pytest

from gpuguard.audit.dockerfiles import evaluate
from gpuguard.audit.images import ResolvedImages
from gpuguard.model.finding import Finding, Location, Severity
from gpuguard.model.image import ImageConfig, ImageProblem, ImageResolution
from gpuguard.rules.dockerfile import check_dockerfile
from gpuguard.rules.images import AssumedImageEnv as ImageEnv
from gpuguard.rules.settings import AuditSettings

CUDA = "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04"
OLD = "registry.example.com/old-cuda:9.0"
PRIVATE = "registry.example.com/x:1"
SETTINGS = AuditSettings()


def resolution(ref: str, *env: str) -> ImageResolution:
    return ImageResolution(ref, (ImageConfig(ref, "sha256:" + "0" * 64, "linux/amd64", env, "registry"),))


REGISTRY = {
    CUDA: resolution(CUDA, "PATH=/usr/bin", "NVIDIA_VISIBLE_DEVICES=all", "CUDA_VERSION=12.4.1",
                     "NVIDIA_REQUIRE_CUDA=cuda>=12.4"),
    OLD: resolution(OLD, "CUDA_VERSION=9.0.176"),
    "ubuntu:22.04": resolution("ubuntu:22.04", "PATH=/usr/bin"),
    PRIVATE: ImageResolution(PRIVATE, problem=ImageProblem(PRIVATE, "auth denied (401)")),
}  # fmt: skip


def gg109(text: str, *, resolved: bool = False) -> list[Finding]:
    images = ResolvedImages(SETTINGS, REGISTRY) if resolved else ImageEnv(SETTINGS)
    return check_dockerfile(evaluate(text, "app/Dockerfile", images, SETTINGS, "linux/amd64"))


# (case, Dockerfile, resolve images?, fires, words the message must hold)
CASES = [
    ("CUDA base not inspected: cannot be decided", f"FROM {CUDA}\n", False, True,
     ["cannot be decided", "'nvcr.io/nvidia/*'", "--resolve-images"]),
    ("twin: void after FROM", f"FROM {CUDA}\nENV NVIDIA_VISIBLE_DEVICES=void\n", False, False, []),
    ("own ENV all on an unknown base is definite", f"FROM {CUDA}\nENV NVIDIA_VISIBLE_DEVICES=all\n", False, True,
     ["sets NVIDIA_VISIBLE_DEVICES=all (ENV at line 2)"]),
    ("ordinary base, not inspected: assumed clean", "FROM ubuntu:22.04\nCMD x\n", False, False, []),
    ("local stage sets all", "FROM ubuntu:22.04 AS gpu\nENV NVIDIA_VISIBLE_DEVICES=all\nFROM gpu\n", False, True,
     ["sets NVIDIA_VISIBLE_DEVICES=all (ENV at line 2)"]),
    ("twin: local stage all, final void",
     "FROM ubuntu:22.04 AS gpu\nENV NVIDIA_VISIBLE_DEVICES=all\nFROM gpu\nENV NVIDIA_VISIBLE_DEVICES=void\n",
     False, False, []),
    ("only the final stage counts", f"FROM {CUDA} AS build\nRUN make\nFROM ubuntu:22.04\nCOPY --from=build /a /a\n",
     False, False, []),
    ("device list", "FROM scratch\nENV NVIDIA_VISIBLE_DEVICES=0,1\n", False, True, ["=0,1"]),
    ("twin: none (libraries only)", "FROM scratch\nENV NVIDIA_VISIBLE_DEVICES=none\n", False, False, []),
    ("twin: empty", 'FROM scratch\nENV NVIDIA_VISIBLE_DEVICES=""\n', False, False, []),
    ("legacy CUDA env set in the Dockerfile", "FROM scratch\nENV CUDA_VERSION=10.2\n", False, True,
     ["legacy CUDA image", "CUDA_VERSION=10.2"]),
    ("twin: legacy with NVIDIA_REQUIRE_CUDA", "FROM scratch\nENV CUDA_VERSION=10.2 NVIDIA_REQUIRE_CUDA=cuda>=10.2\n",
     False, False, []),
    ("resolved CUDA base: definite", f"FROM {CUDA}\nCMD x\n", True, True,
     [f"base image {CUDA}", "sets NVIDIA_VISIBLE_DEVICES=all"]),
    ("twin: resolved CUDA base with void", f"FROM {CUDA}\nENV NVIDIA_VISIBLE_DEVICES=void\n", True, False, []),
    ("resolved legacy base", f"FROM {OLD}\n", True, True, ["legacy CUDA image", "CUDA_VERSION=9.0.176"]),
    ("twin: resolved ordinary base", "FROM ubuntu:22.04\n", True, False, []),
    ("resolved base that failed: the reason, no --resolve-images hint", f"FROM {PRIVATE}\n", True, True,
     [f"base image {PRIVATE} could not be inspected: auth denied (401)"]),
    ("twin: failed base, void", f"FROM {PRIVATE}\nENV NVIDIA_VISIBLE_DEVICES=void\n", True, False, []),
    ("GPU base behind a build arg without default", "ARG TAG\nFROM nvcr.io/nvidia/cuda:${TAG}\n", False, True,
     ["build arg TAG, which has no default", "'nvcr.io/nvidia/*'"]),
    ("twin: ordinary base behind a build arg: assumed clean", "ARG BASE\nFROM ${BASE}\nCMD x\n", False, False, []),
    ("but its own ENV still counts", "ARG BASE\nFROM ${BASE}\nENV NVIDIA_VISIBLE_DEVICES=all\n", False, True,
     ["sets NVIDIA_VISIBLE_DEVICES=all"]),
    ("a base behind a build arg with --resolve-images stays unknown", "ARG BASE\nFROM ${BASE}\n", True, True,
     ["build arg BASE, which has no default"]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "text", "resolved", "fires", "words"), CASES, ids=[c[0] for c in CASES])
def test_gg109(case: str, text: str, resolved: bool, fires: bool, words: list[str]) -> None:
    found = gg109(text, resolved=resolved)
    assert bool(found) is fires, [f.message for f in found]
    for word in words:
        assert word in found[0].message
    if found and resolved:
        assert "--resolve-images" not in found[0].message


def test_finding_points_at_the_last_from_for_fix() -> None:
    [f] = gg109(f"FROM {CUDA} AS a\nRUN x\nFROM a\nCMD y\n", resolved=True)
    assert f.rule_id == "GG109"
    assert f.severity is Severity.MEDIUM
    assert f.location == Location("app/Dockerfile", 3)
    assert f.resource is None and f.container is None
    assert f.fingerprint == "GG109|app/Dockerfile|"
    assert "ENV NVIDIA_VISIBLE_DEVICES=void" in f.remediation and "line 3" in f.remediation
    assert f.trail[0].read == f"final stage (line 3) builds on stage 'a' (line 1) -> {CUDA}"


def test_fix_plan_edits_the_dockerfile_a_finding_names() -> None:
    from gpuguard.fixes.plan import plan

    text = "FROM ubuntu:22.04 AS gpu\nENV NVIDIA_VISIBLE_DEVICES=all\nFROM gpu\nCMD x\n"
    [f] = gg109(text)
    # an ordinary base: the Dockerfile scan alone would leave it; the finding makes it an edit
    result = plan([f], None, {"app/Dockerfile": text}, is_gpu_image=SETTINGS.is_gpu_image)
    [edit] = result.edits
    assert edit.after == text.replace("FROM gpu\n", "FROM gpu\nENV NVIDIA_VISIBLE_DEVICES=void\n")
    assert edit.fixes == ("GG109|app/Dockerfile|",)
    assert result.manual == ()
    assert gg109(edit.after) == []
