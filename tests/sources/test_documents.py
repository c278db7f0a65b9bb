"""Loading YAML and JSON documents from untrusted input."""

from __future__ import annotations

import datetime
from pathlib import Path

import orjson
import pytest
import yaml

from gpuguard.model.errors import InputError
from gpuguard.sources.documents import Document, Limits, load_document, load_documents

FIXTURES = Path(__file__).parent.parent / "fixtures" / "manifests"


def docs(data: bytes | str, where: str = "f.yaml", **kw: object) -> list[Document]:
    return list(load_documents(data, where, **kw))  # type: ignore[arg-type]


def only_error(data: bytes | str, **kw: object) -> str:
    (doc,) = docs(data, **kw)
    assert doc.error is not None and doc.obj is None
    return str(doc.error)


# --- streams ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: 1\n", [{"a": 1}]),
        ("a: 1\n---\nb: 2\n", [{"a": 1}, {"b": 2}]),
        ("---\na: 1\n---\nb: 2\n...\n", [{"a": 1}, {"b": 2}]),
        ("# only a comment\n---\na: 1\n", [{"a": 1}]),
        ("a: 1\n---\n---\nb: 2\n", [{"a": 1}, None, {"b": 2}]),
        ("--- {a: 1}\n--- [1, 2]\n", [{"a": 1}, [1, 2]]),
        ("%YAML 1.1\n---\na: 1\n", [{"a": 1}]),
        ("a: 1\r\n---\r\nb: 2\r\n", [{"a": 1}, {"b": 2}]),
        ("\ufeffa: 1\n", [{"a": 1}]),
        ("a: |\n  ---\n  text\n", [{"a": "---\ntext\n"}]),
        ("a: ---x\n", [{"a": "---x"}]),
        ("", []),
        ("\n\n# nothing\n", []),
    ],
)
def test_yaml_streams(text: str, expected: list[object]) -> None:
    got = docs(text)
    assert all(d.ok for d in got), got
    assert [d.obj for d in got] == expected
    assert [d.index for d in got] == list(range(len(expected)))
    assert [d.where for d in got] == [f"f.yaml#{i}" for i in range(len(expected))]


def test_bytes_and_str_agree() -> None:
    text = "a: é\n---\nb: [1, 2]\n"
    assert [d.obj for d in docs(text)] == [d.obj for d in docs(text.encode())]


def test_document_lines() -> None:
    got = docs("a: 1\n---\n\nb: 2\n---\nc: 3\n")
    assert [d.line for d in got] == [1, 4, 6]


def test_syntax_error_in_the_middle_keeps_the_rest() -> None:
    got = docs((FIXTURES / "broken-middle.yaml").read_bytes(), "broken-middle.yaml")
    assert [d.ok for d in got] == [True, False, True]
    assert got[0].obj["metadata"]["name"] == "first"
    assert got[2].obj["metadata"]["name"] == "third"
    message = str(got[1].error)
    assert message.startswith("broken-middle.yaml#1: line 10, column 5: did not find expected ',' or '}'")
    assert "line 9, column 11" in message  # where the flow mapping began
    assert "skipped to the next '---' line" in message
    assert got[1].error is not None and got[1].error.where == "broken-middle.yaml#1"


def test_error_line_numbers_count_from_the_file_start() -> None:
    text = "a: 1\n---\nb: 2\n---\nc: [\n"
    *_, bad = docs(text)
    assert "line 6" in str(bad.error) or "line 5" in str(bad.error)
    assert bad.index == 2


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("a: !!python/object:os.system {}\n", "could not determine a constructor"),
        ("a: !!python/name:os.system ''\n", "could not determine a constructor"),
        ("a: !!int abc\n", "cannot construct a value"),
        ("a: !!binary 'a'\n", "base64"),
        ("a: *undefined\n", "found undefined alias"),
        ("a: b: c\n", "mapping values are not allowed"),
        ("a: [1, 2\n", "did not find expected"),
        ("a:\t\tb\n\t- c\n", "tab"),
        ("? [1, 2]\n: x\n", "unhashable"),
        ("a: \x07\n", "control characters"),
    ],
)
def test_bad_yaml_is_an_error_document(text: str, needle: str) -> None:
    message = only_error(text)
    assert message.startswith("f.yaml#0: ")
    assert needle in message.lower() or needle in message


def test_constructor_error_does_not_lose_later_documents() -> None:
    got = docs("a: !!int abc\n---\nb: 1\n")
    assert [d.ok for d in got] == [False, True]


def test_scalars_resolve_as_kubernetes_does() -> None:
    text = "date: 2024-01-01\nstamp: 2024-01-01T10:00:00Z\nbase60: 1:20\nhex: 0x10\nyes: yes\nf: 1.5\n"
    (doc,) = docs(text)
    assert doc.obj == {"date": "2024-01-01", "stamp": "2024-01-01T10:00:00Z", "base60": "1:20",
                       "hex": 16, True: True, "f": 1.5}  # fmt: skip
    # An explicit tag still means what it says.
    assert docs("d: !!timestamp 2024-01-01\n")[0].obj == {"d": datetime.date(2024, 1, 1)}


# --- duplicate keys ------------------------------------------------------------------------------


def test_duplicate_keys_warn_and_the_last_value_wins() -> None:
    (doc,) = docs("a: 1\nb:\n  x: 1\n  x: 2\na: 3\n")
    assert doc.ok and doc.obj == {"a": 3, "b": {"x": 2}}
    assert sorted(doc.warnings) == [
        "line 4, column 3: duplicate key 'x'; the last value is used",
        "line 5, column 1: duplicate key 'a'; the last value is used",
    ]


def test_duplicate_keys_can_be_errors() -> None:
    message = only_error("a: 1\na: 2\n", limits=Limits(duplicate_keys="error"))
    assert "line 2, column 1: duplicate key 'a'" in message


def test_merge_keys_are_not_duplicates() -> None:
    (doc,) = docs("base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  x: 3\n")
    assert doc.ok and not doc.warnings
    assert doc.obj["use"] == {"x": 3, "y": 2}


def test_duplicate_json_keys_warn() -> None:
    (doc,) = docs('{"a": 1, "b": {"c": 1, "c": 2}}', "f.json")
    assert doc.obj == {"a": 1, "b": {"c": 2}}
    assert doc.warnings == ("duplicate key 'c'; the last value is used",)
    assert not docs('{"a": "x\\":", "b": ":"}', "f.json")[0].warnings  # colons inside strings are not keys
    message = only_error('{"a": 1, "a": 2}', limits=Limits(duplicate_keys="error"))
    assert "duplicate key 'a'" in message


# --- alias bombs -----------------------------------------------------------------------------------


def test_billion_laughs_is_refused() -> None:
    data = (FIXTURES / "billion-laughs.yaml").read_bytes()
    (doc,) = docs(data, "billion-laughs.yaml")
    assert doc.error is not None
    assert "refused as an alias bomb" in str(doc.error)
    assert str(doc.error).startswith("billion-laughs.yaml#0: aliases expand this document to 490329064 nodes")


def test_wide_alias_bomb_is_refused() -> None:
    # One big anchored list, referenced many times: quadratic rather than exponential.
    text = "a: &a [" + ", ".join(["x"] * 2000) + "]\nb: [" + ", ".join(["*a"] * 2000) + "]\n"
    assert "alias bomb" in only_error(text)


def test_merge_key_bomb_is_refused() -> None:
    lines = ["a0: &a0 {" + ", ".join(f"k{i}: {i}" for i in range(100)) + "}"]
    for n in range(1, 8):
        lines.append(f"a{n}: &a{n} {{<<: [{', '.join([f'*a{n - 1}'] * 10)}], k{n}: x}}")
    assert "alias bomb" in only_error("\n".join(lines) + "\n")


def test_recursive_alias_is_refused() -> None:
    assert "recursive alias" in only_error("a: &a [1, *a]\n")
    assert "recursive alias" in only_error("a: &a {b: *a}\n")
    assert "recursive alias" in only_error("a: &a {<<: *a}\n")


def test_modest_aliases_are_fine() -> None:
    (doc,) = docs((FIXTURES / "anchors.yaml").read_bytes())
    containers = doc.obj["spec"]["template"]["spec"]["containers"]
    assert containers[0]["env"] == containers[1]["env"]
    assert containers[1]["resources"] == {"limits": {"nvidia.com/gpu": 1}}


def test_alias_limit_is_configurable() -> None:
    text = "a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\nb: [*a, *a, *a]\n"
    assert docs(text)[0].ok
    assert "alias bomb" in only_error(text, limits=Limits(max_alias_expansion=20))


def test_cron_stars_are_not_aliases() -> None:
    (doc,) = docs('schedule: "*/5 * * * *"\nglob: "a/*"\n')
    assert doc.obj == {"schedule": "*/5 * * * *", "glob": "a/*"}


# --- binary and oversized input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"a: 1\n\x00\x01\x02", "binary input: NUL byte at offset 5 (line 2)"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "binary input"),
        (b"a: \xff\xfe\n", "not UTF-8 text: invalid byte 0xff at offset 3 (line 1)"),
        (b"a: 1\nb: \xc3\n", "not UTF-8 text: invalid byte 0xc3 at offset 8 (line 2)"),
        ("a: 1".encode("utf-16"), "UTF-16 text"),
        ("a: 1".encode("utf-32"), "UTF-32 text"),
        ("a: \ud800", "unpaired surrogate"),
    ],
)
def test_binary_input_is_refused(data: bytes | str, needle: str) -> None:
    (doc,) = docs(data)
    assert doc.where == "f.yaml" and doc.index == 0
    assert doc.error is not None and needle in str(doc.error)
    assert str(doc.error).startswith("f.yaml: ")


def test_size_limit() -> None:
    data = b"a: " + b"x" * 100 + b"\n"
    assert docs(data, limits=Limits(max_bytes=len(data)))[0].ok
    assert "larger than the limit of 50 bytes" in only_error(data, limits=Limits(max_bytes=50))
    assert "larger than the limit" in only_error("é" * 30, limits=Limits(max_bytes=50))


def test_large_stream_loads() -> None:
    one = (FIXTURES / "pod.yaml").read_text()
    data = "---\n".join([one] * 2000).encode()  # ~4 MiB, under the default limit
    assert len(data) > 2 * 1024 * 1024
    got = docs(data)
    assert len(got) == 2000 and all(d.ok for d in got)
    assert got[-1].obj == got[0].obj
    assert got[1].line == one.count("\n") + 3  # after the "---" line and the leading comment


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    assert "depth limit exceeded" in only_error("[" * 100_000 + "]" * 100_000)  # JSON-looking
    assert "nesting" in only_error("a: " + "[" * 100_000 + "]" * 100_000).lower()
    assert "nesting" in only_error("- " * 100_000 + "x\n").lower()
    assert "depth" in only_error("[" * 5000 + "]" * 5000, format="json").lower()


# --- JSON ----------------------------------------------------------------------------------------------


def test_kubectl_get_json_list() -> None:
    (doc,) = docs((FIXTURES / "kubectl-get-list.json").read_bytes(), "list.json")
    assert doc.ok and doc.where == "list.json#0"
    assert doc.obj["kind"] == "List" and len(doc.obj["items"]) == 3


def test_concatenated_json_stream() -> None:
    got = docs('{"a": 1}\n{"b": 2}[3]\n\n{"c": ', "s.json")
    assert [d.obj for d in got[:3]] == [{"a": 1}, {"b": 2}, [3]]
    assert [d.line for d in got] == [1, 2, 2, 4]
    bad = got[3]
    assert bad.where == "s.json#3" and bad.error is not None
    assert "the rest of the input could not be read" in str(bad.error)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('{"a": 1,', "line 1, column 9"),
        ('{\n  "a": [1,\n  ]\n}', "line 2, column 10: trailing comma"),
        ('{"a": NaN}', "line 1"),
        ('{"a": 1e999}', "line 1"),
    ],
)
def test_bad_json(text: str, needle: str) -> None:
    message = only_error(text, format="json")
    assert message.startswith("f.yaml#0: ") and needle in message


def test_yaml_flow_that_is_not_json_is_read_as_yaml() -> None:
    assert [d.obj for d in docs("{a: 1, b: [x, y]}\n")] == [{"a": 1, "b": ["x", "y"]}]
    assert [d.obj for d in docs("[a, b]\n---\n[c]\n")] == [["a", "b"], ["c"]]


def test_broken_json_reports_the_json_error() -> None:
    message = only_error('{"a": [1, 2}', where="x.json")
    assert "x.json#0: line 1" in message


def test_json_and_yaml_agree_on_generated_manifest() -> None:
    obj = yaml.safe_load((FIXTURES / "pod.yaml").read_text())
    (from_json,) = docs(orjson.dumps(obj), "p.json")
    assert from_json.obj == obj


# --- load_document ---------------------------------------------------------------------------------------


def test_load_document() -> None:
    assert load_document("a: 1\n", "f.yaml") == {"a": 1}
    assert load_document('{"a": 1}', "f.json") == {"a": 1}
    with pytest.raises(InputError, match="expected exactly one document, found 2"):
        load_document("a: 1\n---\nb: 2\n", "f.yaml")
    with pytest.raises(InputError, match="found 0"):
        load_document("", "f.yaml")
    with pytest.raises(InputError, match=r"f.yaml#0: line 2"):
        load_document("a: [\n", "f.yaml")
    with pytest.raises(InputError, match="binary input"):
        load_document(b"\x00", "f.yaml")


# --- without libyaml -----------------------------------------------------------------------------------


@pytest.fixture
def pure_python_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    from gpuguard.sources import documents

    monkeypatch.setattr(documents, "_Loader", documents._make_loader(yaml.SafeLoader))


@pytest.mark.usefixtures("pure_python_loader")
def test_pure_python_fallback_has_the_same_defences() -> None:
    assert [d.obj for d in docs("a: 1\n---\nb: [\n---\nc: 2020-01-01\n") if d.ok] == [{"a": 1}, {"c": "2020-01-01"}]
    assert "alias bomb" in only_error((FIXTURES / "billion-laughs.yaml").read_bytes())
    assert "recursive alias" in only_error("a: &a [*a]\n")
    assert "nested too deeply" in only_error("a: " + "[" * 50_000 + "]" * 50_000)
    assert docs("a: 1\na: 2\n")[0].warnings == ("line 2, column 1: duplicate key 'a'; the last value is used",)


def test_constructor_errors_inside_one_chunk_do_not_stop_it() -> None:
    # "..." ends a document without a "---" line, so both documents share one chunk.
    got = docs("a: !!int abc\n...\n%YAML 1.1\n---\nb: !!python/tuple [1]\n...\n--- {c: 1}\n")
    assert [d.ok for d in got] == [False, False, True]
    assert got[2].obj == {"c": 1}
