"""Dockerfile parsing: the env each stage's image sets, as BuildKit evaluates it without --build-arg."""

from __future__ import annotations

import pytest

from gpuguard.model.errors import InputError
from gpuguard.sources.images.dockerfile import expand, instructions, parse

CUDA = "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04"
BASES = {
    CUDA: ("PATH=/usr/bin", "NVIDIA_VISIBLE_DEVICES=all", "CUDA_VERSION=12.4.1"),
    "ubuntu:22.04": ("PATH=/usr/bin",),
}


def base_env(image: str) -> tuple[tuple[str, ...] | None, str]:
    return BASES.get(image), f"base image {image} was not inspected"


def final(text: str) -> dict[str, str | None]:
    return parse(text, "Dockerfile", base_env).final.env.values


# (case, Dockerfile, variable, value it ends with in the final image)
CASES = [
    ("ENV k=v", "FROM scratch\nENV A=1\n", "A", "1"),
    ("ENV quoted", 'FROM scratch\nENV A="v 2" B=\'$x\'\n', "A", "v 2"),
    ("single quotes keep $", "FROM scratch\nENV B='$x'\n", "B", "$x"),
    ("legacy ENV k v", "FROM scratch\nENV A hello world\n", "A", "hello world"),
    ("legacy ENV quoted", 'FROM scratch\nENV A "x  y"\n', "A", "x  y"),
    ("several pairs", "FROM scratch\nENV A=1 B=2 C=3\n", "C", "3"),
    ("pairs see the env before the ENV", "FROM scratch\nENV A=1\nENV A=2 B=$A\n", "B", "1"),
    ("${VAR}", "FROM scratch\nENV A=x\nENV B=${A}y\n", "B", "xy"),
    ("$VAR", "FROM scratch\nENV A=x\nENV B=$A/y\n", "B", "x/y"),
    ("${VAR:-default} unset", "FROM scratch\nENV B=${NOPE:-d}\n", "B", "d"),
    ("${VAR:-default} set", "FROM scratch\nENV A=x\nENV B=${A:-d}\n", "B", "x"),
    ("${VAR:+alt}", "FROM scratch\nENV A=x\nENV B=${A:+alt}\n", "B", "alt"),
    ("escaped $", "FROM scratch\nENV A=x\nENV B=\\$A\n", "B", "$A"),
    ("continuation", "FROM scratch\nENV A=1 \\\n    B=2\n", "B", "2"),
    ("comment inside continuation", "FROM scratch\nENV A=1 \\\n# note\n    B=2\n", "B", "2"),
    ("escape directive", "# escape=`\nFROM scratch\nENV A=1 `\n    B=c:\\dir\n", "B", "c:\\dir"),
    ("ARG default in ENV", "FROM scratch\nARG V=3\nENV A=$V\n", "A", "3"),
    ("ARG without default is unset", "FROM scratch\nARG V\nENV A=${V:-none}\n", "A", "none"),
    ("global ARG needs redeclaring", "ARG V=3\nFROM scratch\nENV A=${V:-gone}\n", "A", "gone"),
    ("redeclared global ARG keeps its default", "ARG V=3\nFROM scratch\nARG V\nENV A=$V\n", "A", "3"),
    ("ENV wins over ARG", "FROM scratch\nARG V=arg\nENV V=env\nENV A=$V\n", "A", "env"),
    ("base env inherited", f"FROM {CUDA}\n", "NVIDIA_VISIBLE_DEVICES", "all"),
    ("base env in substitution", f"FROM {CUDA}\nENV P=$PATH:/x\n", "P", "/usr/bin:/x"),
    ("ENV overrides the base", f"FROM {CUDA}\nENV NVIDIA_VISIBLE_DEVICES=void\n", "NVIDIA_VISIBLE_DEVICES", "void"),
    ("global ARG in FROM", "ARG T=12.4.1\nFROM nvcr.io/nvidia/cuda:${T}-base-ubuntu22.04\n", "CUDA_VERSION", "12.4.1"),
    ("FROM with --platform", f"FROM --platform=$BUILDPLATFORM {CUDA} AS b\n", "NVIDIA_VISIBLE_DEVICES", "all"),
    ("stage by name", "FROM scratch AS One\nENV A=1\nFROM one\nENV B=2\n", "A", "1"),
    ("stage name in an ARG", "ARG S=gpu\nFROM scratch AS gpu\nENV A=1\nFROM ${S}\n", "A", "1"),
    ("lower-case keywords", "from scratch\nenv A=1\n", "A", "1"),
    ("heredoc body is not instructions",
     "FROM scratch\nRUN <<EOF\nENV A=bad\nEOF\nENV B=ok\n", "A", None),
    ("heredoc with dash and quotes",
     "FROM scratch\nCOPY <<-'END' /x\n\tENV A=bad\n\tEND\nENV B=ok\n", "B", "ok"),
    ("TARGETARCH in FROM", "FROM ubuntu:22.04\nARG TARGETARCH\nENV A=$TARGETARCH\n", "A", "amd64"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "text", "name", "value"), CASES, ids=[c[0] for c in CASES])
def test_final_env(case: str, text: str, name: str, value: str | None) -> None:
    assert final(text).get(name) == value


def test_stages_names_lines_and_parents() -> None:
    text = "ARG B=ubuntu:22.04\nFROM ${B} AS base\nENV A=1\n\nFROM base AS mid\nFROM mid\n"
    df = parse(text, "Dockerfile", base_env)
    assert [(s.name, s.line, s.base, s.parent) for s in df.stages] == [
        ("base", 2, "ubuntu:22.04", None), ("mid", 5, "base", 0), (None, 6, "mid", 1)]  # fmt: skip
    assert [s.index for s in df.chain()] == [2, 1, 0]
    assert df.external == ("ubuntu:22.04",)


def test_unknown_base_leaves_unset_names_unknown() -> None:
    df = parse("FROM private/img:1\nENV A=1 B=$NVIDIA_VISIBLE_DEVICES\n", "Dockerfile", base_env)
    env = df.final.env
    assert env.unknown == "base image private/img:1 was not inspected"
    assert env.values == {"A": "1", "B": None}  # B depends on the base: unknown, never empty
    assert df.final.base_note == env.unknown


def test_from_with_an_arg_without_default_is_unknown() -> None:
    df = parse("ARG TAG\nFROM nvcr.io/nvidia/cuda:${TAG}\n", "Dockerfile", base_env)
    assert df.final.env.unknown is not None
    assert "build arg TAG, which has no default" in df.final.env.unknown
    assert df.external == ()


def test_scratch_sets_nothing() -> None:
    df = parse("FROM scratch\n", "Dockerfile", base_env)
    assert df.final.env.values == {}
    assert df.final.env.unknown is None
    assert df.external == ()


def test_no_from_is_an_input_error() -> None:
    with pytest.raises(InputError, match="no FROM"):
        parse("# just a comment\nRUN x\n", "Dockerfile.dockerignore", base_env)


def test_instruction_lines_span_continuations_and_heredocs() -> None:
    text = "FROM a\nRUN x \\\n  y\nRUN <<EOF\nbody\nEOF\nCMD z\n"
    got = [(i.keyword, i.line, i.last) for i in instructions(text)[0]]
    assert got == [("FROM", 1, 1), ("RUN", 2, 3), ("RUN", 4, 6), ("CMD", 7, 7)]


def test_directive_only_at_the_top() -> None:
    assert instructions("FROM a\n# escape=`\n")[1] == "\\"
    assert instructions("# syntax=docker/dockerfile:1\n# escape=`\nFROM a\n")[1] == "`"


@pytest.mark.parametrize(("word", "out"), [
    ('"a b"', "a b"), ("'a $X'", "a $X"), ('"$X"', "x"), ("${X}y", "xy"), ("${U-d}", "d"), ("${E-d}", ""),
    ("${E:-d}", "d"), ("$", "$"), ("a\\ b", "a b"), ('"q\\"q"', 'q"q'),
])  # fmt: skip
def test_expand(word: str, out: str) -> None:
    values = {"X": "x", "E": ""}
    assert expand(word, values.get) == out
