"""Dockerfile fixer: ENV NVIDIA_VISIBLE_DEVICES=void in the final stage. Expected text typed by hand."""

from __future__ import annotations

import pytest

from gpuguard.fixes.dockerfile import final_base_image, set_void
from gpuguard.syntax.dockerfile import instructions

MULTI_STAGE = """\
# syntax=docker/dockerfile:1
ARG CUDA=12.4.1
FROM nvcr.io/nvidia/cuda:${CUDA}-devel-ubuntu22.04 AS build
ENV NVIDIA_VISIBLE_DEVICES=all
RUN make

# runtime image
FROM nvcr.io/nvidia/cuda:${CUDA}-base-ubuntu22.04 \\
    AS runtime
# keep this comment
COPY --from=build /out /app
CMD ["/app/serve"]
"""

MULTI_STAGE_FIXED = """\
# syntax=docker/dockerfile:1
ARG CUDA=12.4.1
FROM nvcr.io/nvidia/cuda:${CUDA}-devel-ubuntu22.04 AS build
ENV NVIDIA_VISIBLE_DEVICES=all
RUN make

# runtime image
FROM nvcr.io/nvidia/cuda:${CUDA}-base-ubuntu22.04 \\
    AS runtime
ENV NVIDIA_VISIBLE_DEVICES=void
# keep this comment
COPY --from=build /out /app
CMD ["/app/serve"]
"""

EXISTING = """\
FROM pytorch/pytorch:2.3.0-cuda12.1-cudnn8-runtime
ENV PATH=/opt/bin:$PATH \\
    NVIDIA_VISIBLE_DEVICES="all" \\
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
RUN <<EOF
echo FROM scratch
ENV NVIDIA_VISIBLE_DEVICES=all
EOF
env NVIDIA_VISIBLE_DEVICES all
"""

EXISTING_FIXED = """\
FROM pytorch/pytorch:2.3.0-cuda12.1-cudnn8-runtime
ENV PATH=/opt/bin:$PATH \\
    NVIDIA_VISIBLE_DEVICES=void \\
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
RUN <<EOF
echo FROM scratch
ENV NVIDIA_VISIBLE_DEVICES=all
EOF
env NVIDIA_VISIBLE_DEVICES=void
"""

ESCAPE = """\
# escape=`
FROM mcr.microsoft.com/windows/servercore `
    AS final
ENV NVIDIA_VISIBLE_DEVICES=all"""

ESCAPE_FIXED = """\
# escape=`
FROM mcr.microsoft.com/windows/servercore `
    AS final
ENV NVIDIA_VISIBLE_DEVICES=void"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(MULTI_STAGE, MULTI_STAGE_FIXED, id="multi-stage-continuation"),
        pytest.param(EXISTING, EXISTING_FIXED, id="existing-env-rewritten-heredoc-skipped"),
        pytest.param(ESCAPE, ESCAPE_FIXED, id="escape-directive-no-final-newline"),
        pytest.param("FROM a\nFROM b", "FROM a\nFROM b\nENV NVIDIA_VISIBLE_DEVICES=void\n", id="from-last-line"),
    ],
)
def test_set_void(text: str, expected: str) -> None:
    fix = set_void(text)
    assert fix.text == expected
    assert fix.changed
    again = set_void(fix.text)
    assert again.text == fix.text
    assert not again.changed


def test_already_void_and_not_a_dockerfile() -> None:
    assert not set_void("FROM cuda\nENV NVIDIA_VISIBLE_DEVICES=void\n").changed
    assert not set_void("# nothing\nRUN x\n").changed


def test_earlier_stage_env_is_not_the_final_stage() -> None:
    text = "FROM cuda AS a\nENV NVIDIA_VISIBLE_DEVICES=void\nFROM cuda\n"
    assert set_void(text).text == text + "ENV NVIDIA_VISIBLE_DEVICES=void\n"


def test_instructions_span_continuations_and_comments() -> None:
    steps, _ = instructions("FROM a \\\n# inner comment\n  AS b\nRUN x\n")
    assert [(s.keyword, s.line, s.last) for s in steps] == [("FROM", 1, 3), ("RUN", 4, 4)]


@pytest.mark.parametrize(
    ("text", "base"),
    [
        (MULTI_STAGE, "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04"),
        ("ARG B=nvcr.io/nvidia/pytorch:24.05-py3\nFROM $B AS deps\nFROM deps\n", "nvcr.io/nvidia/pytorch:24.05-py3"),
        ("FROM --platform=$BUILDPLATFORM golang AS g\nFROM alpine:3.20\n", "alpine:3.20"),
        ("RUN x\n", None),
    ],
)
def test_final_base_image(text: str, base: str | None) -> None:
    assert final_base_image(text) == base
