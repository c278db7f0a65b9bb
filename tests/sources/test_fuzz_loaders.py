"""Fuzzing the loaders: whatever comes in, an answer comes out and nothing else escapes.

The number of examples is bounded (``GPUGUARD_FUZZ_EXAMPLES``, default 150 per
property) so the suite's run time stays predictable; raise it for a long
fuzzing session.
"""

from __future__ import annotations

import os
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpuguard.model.errors import InputError
from gpuguard.model.pod import Container, EnvVar, Pod, SecurityContext, Volume, VolumeMount
from gpuguard.sources.documents import Document, Limits, load_documents
from gpuguard.sources.kubernetes import pods_from_object

EXAMPLES = int(os.environ.get("GPUGUARD_FUZZ_EXAMPLES", "150"))
fuzz = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SMALL = Limits(max_bytes=64 * 1024, max_alias_expansion=10_000)


def check_stream(data: bytes | str, where: str = "fuzz.yaml") -> list[Document]:
    docs = list(load_documents(data, where, limits=SMALL))
    for i, doc in enumerate(docs):
        if doc.error is not None:
            assert isinstance(doc.error, InputError)
            assert doc.obj is None
            assert str(doc.error).startswith(where)
        else:
            assert doc.where == f"{where}#{doc.index}"
        assert doc.index == i or doc.where == where
    return docs


@fuzz
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    check_stream(data)


@fuzz
@given(st.text(max_size=1024))
def test_arbitrary_text_never_raises(text: str) -> None:
    check_stream(text)


YAML_TOKENS = [
    "- ", ": ", "? ", "&a ", "&b ", "*a", "*b", "[", "]", "{", "}", ", ", "---\n", "...\n", "\n", "  ", "\t",
    "!!int ", "!!str ", "!!binary ", "!!set ", "!!python/object:os.system ", "<<: ", "'", '"', "|\n", ">-\n",
    "#", "%YAML 1.1\n", "key", "0x1F", "1:20", "2024-01-01", "yes", "~", "null", "1e9", ".inf", "\\", "é",
    "\x00", "\ufeff", "\r\n",
]  # fmt: skip


@fuzz
@given(st.lists(st.sampled_from(YAML_TOKENS), max_size=80))
def test_yaml_shaped_noise_never_raises(tokens: list[str]) -> None:
    check_stream("".join(tokens))


JSON_TOKENS = ["{", "}", "[", "]", '"a"', ":", ",", "1", "-1.5e3", "true", "null", " ", "\n",
               '"\\u00e9"', '"\\ud800"', "NaN", "//"]  # fmt: skip


@fuzz
@given(st.lists(st.sampled_from(JSON_TOKENS), max_size=80))
def test_json_shaped_noise_never_raises(tokens: list[str]) -> None:
    check_stream("{" + "".join(tokens), "fuzz.json")


# PyYAML's emitter writes NEL, LS and PS raw inside scalars, where every YAML 1.1 reader
# (libyaml, go-yaml) takes them for line breaks: a dumper quirk, not a loader one.
TEXT = st.text(max_size=8).filter(lambda s: not any(c in s for c in "\x85\u2028\u2029"))
JSON_VALUES = st.recursive(
    # JSON (orjson) has neither infinities nor integers beyond 64 bits.
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=20,
)
POD_FIELDS = [
    ("spec",), ("spec", "containers"), ("spec", "containers", 0), ("spec", "containers", 0, "env"),
    ("spec", "containers", 0, "env", 0), ("spec", "containers", 0, "env", 0, "valueFrom"),
    ("spec", "containers", 0, "resources"), ("spec", "containers", 0, "resources", "limits"),
    ("spec", "containers", 0, "securityContext"), ("spec", "containers", 0, "volumeMounts"),
    ("spec", "volumes"), ("spec", "volumes", 0, "hostPath"), ("metadata",), ("metadata", "labels"),
    ("spec", "containers", 0, "envFrom"), ("spec", "containers", 0, "name"), ("items",), ("kind",),
]  # fmt: skip


def skeleton() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"a": "b"}},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}],
                    "envFrom": [{"configMapRef": {"name": "m"}}],
                    "resources": {"limits": {"nvidia.com/gpu": 1}},
                    "securityContext": {"privileged": False},
                    "volumeMounts": [{"name": "v", "mountPath": "/v"}],
                }
            ],
            "volumes": [{"name": "v", "hostPath": {"path": "/dev"}}],
        },
    }


@fuzz
@given(st.sampled_from(POD_FIELDS), JSON_VALUES)
def test_any_value_anywhere_gives_pods_or_an_input_error(field: tuple[Any, ...], value: object) -> None:
    obj = skeleton()
    target: Any = obj
    for step in field[:-1]:
        target = target[step]
    target[field[-1]] = value
    try:
        pods = pods_from_object(obj, "f#0")
    except InputError as e:
        assert str(e).startswith("f#0")
    else:
        assert all(isinstance(p, Pod) for p in pods)


NAMES = st.text(alphabet=string.ascii_lowercase + string.digits + "-", min_size=1, max_size=12)
ENV_VALUES = st.text(max_size=20).filter(lambda s: not any(c in s for c in "\x00\x85\u2028\u2029"))


@st.composite
def pods(draw: st.DrawFn) -> tuple[dict[str, Any], Pod]:
    """A valid Pod manifest and the model it must turn into."""
    name, namespace = draw(NAMES), draw(NAMES)
    containers, manifests = [], []
    for i in range(draw(st.integers(1, 3))):
        env = draw(st.lists(st.tuples(NAMES, ENV_VALUES), max_size=3))
        gpus = draw(st.integers(0, 8))
        privileged = draw(st.booleans())
        caps = draw(st.lists(st.sampled_from(["SYS_ADMIN", "NET_ADMIN", "ALL"]), max_size=2))
        mounts = draw(st.lists(st.tuples(NAMES, st.sampled_from(["/dev", "/data", "/x y"])), max_size=2))
        manifests.append(
            {
                "name": f"c{i}",
                "image": "img",
                "env": [{"name": k, "value": v} for k, v in env],
                "resources": {"limits": {"nvidia.com/gpu": draw(st.sampled_from([gpus, str(gpus)]))}},
                "securityContext": {"privileged": privileged, "capabilities": {"add": caps}},
                "volumeMounts": [{"name": n, "mountPath": p} for n, p in mounts],
            }
        )
        containers.append(
            Container(
                name=f"c{i}",
                image="img",
                env=tuple(EnvVar(k, v) for k, v in env),
                resources={"nvidia.com/gpu": gpus},
                security=SecurityContext(privileged=privileged, capabilities_add=tuple(caps)),
                volume_mounts=tuple(VolumeMount(n, p) for n, p in mounts),
            )
        )
    host_paths = draw(st.lists(st.tuples(NAMES, st.sampled_from(["/dev", "/", "/var/run"])), max_size=2))
    labels = draw(st.dictionaries(NAMES, ENV_VALUES, max_size=3))
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "containers": manifests,
            "volumes": [{"name": n, "hostPath": {"path": p}} for n, p in host_paths],
        },
    }
    expected = Pod(
        name=name,
        namespace=namespace,
        containers=tuple(containers),
        volumes=tuple(Volume(n, host_path=p, kind="hostPath") for n, p in host_paths),
        labels=labels,
        workload_name=name,
        workload_api_version="v1",
        workload_namespace=namespace,
        workload_labels=labels,
    )
    return manifest, expected


@fuzz
@given(st.lists(pods(), min_size=1, max_size=3), st.sampled_from(["yaml", "json"]))
def test_generated_manifests_round_trip(generated: list[tuple[dict[str, Any], Pod]], fmt: str) -> None:
    manifests = [m for m, _ in generated]
    if fmt == "yaml":
        data = yaml.safe_dump_all(manifests, allow_unicode=True).encode()
    else:
        data = b"\n".join(orjson.dumps(m) for m in manifests)
    docs = list(load_documents(data, f"gen.{fmt}"))
    assert [d.error for d in docs] == [None] * len(manifests)
    got = [pod for d in docs for pod in pods_from_object(d.obj, d.where)]
    assert got == [p for _, p in generated]


FIXTURES = sorted((Path(__file__).parent.parent / "fixtures" / "manifests").glob("*"))


@fuzz
@given(
    st.sampled_from(FIXTURES),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 8), st.sampled_from(YAML_TOKENS)), max_size=4),
)
def test_mutated_manifests_give_pods_or_input_errors(path: Path, edits: list[tuple[int, int, str]]) -> None:
    """Real manifests with a few slices replaced: loading and mapping fail only with InputError."""
    text = path.read_text()
    for offset, length, token in edits:
        at = offset % (len(text) + 1)
        text = text[:at] + token + text[at + length :]
    for doc in check_stream(text, path.name):
        if doc.error is None and isinstance(doc.obj, Mapping):
            try:
                pods_from_object(doc.obj, doc.where)
            except InputError as e:
                assert str(e).startswith(doc.where)


@fuzz
@given(st.lists(JSON_VALUES, min_size=1, max_size=4))
def test_any_json_like_stream_round_trips(values: list[object]) -> None:
    for data, fmt in (
        (yaml.safe_dump_all(values, allow_unicode=True), "yaml"),
        (b"\n".join(orjson.dumps(v) for v in values), "json"),
    ):
        docs = list(load_documents(data, f"v.{fmt}", format=fmt))  # type: ignore[arg-type]
        assert [d.error for d in docs] == [None] * len(values)
        assert [d.obj for d in docs] == values
