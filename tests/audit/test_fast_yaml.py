"""The fast YAML construction in ``sources.documents`` builds exactly what PyYAML's constructor builds."""

from __future__ import annotations

import math
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuguard.sources import documents
from gpuguard.sources.documents import load_documents

TRICKY = st.sampled_from([
    "yes", "No", "on", "OFF", "true", "False", "~", "null", "", "0x1F", "0o17", "017", "1_000", "+12", "-0",
    "1.5e3", "1.5e+3", ".inf", "-.Inf", "1:20", "2001-12-14", "<<", "=", "!", "&a", "*a", "y", "n", "0b101",
])  # fmt: skip
SCALARS = st.one_of(TRICKY, st.text(max_size=12), st.integers(), st.booleans(), st.none(),
                    st.floats(allow_nan=False, allow_infinity=True))
KEYS = st.one_of(TRICKY, st.text(min_size=1, max_size=8), st.integers(-5, 5))
TREES = st.recursive(SCALARS, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                                     st.dictionaries(KEYS, kids, max_size=4)), max_leaves=25)


def _slow(text: bytes) -> Any:
    loader = documents._Loader(text)
    try:
        assert loader.check_node()
        return loader.construct_document(loader.get_node())
    finally:
        loader.dispose()


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@settings(max_examples=300, deadline=None)
@given(TREES, st.booleans())
def test_fast_path_equals_pyyaml(tree: Any, flow: bool) -> None:
    text = yaml.safe_dump({"doc": tree}, default_flow_style=flow, allow_unicode=True).encode()
    plain = text.replace(b"'", b"")  # also unquoted: scalars resolved by the implicit resolvers
    for data in (text, plain):
        try:
            expected = _slow(data)
        except yaml.YAMLError:
            continue
        (doc,) = load_documents(data, "t", format="yaml")
        if doc.error is None:
            assert _same(doc.obj, expected), (data, doc.obj, expected)


def test_merge_keys_and_tags_take_the_pyyaml_path() -> None:
    data = b"base: &b {a: 1}\nchild:\n  <<: *b\n  c: !!str 2\n"
    (doc,) = load_documents(data, "t")
    assert doc.obj == {"base": {"a": 1}, "child": {"a": 1, "c": "2"}}


def test_duplicate_keys_are_still_reported_on_the_fast_path() -> None:
    (doc,) = load_documents(b"a: 1\nb: 2\na: 3\n", "t")
    assert doc.obj == {"a": 3, "b": 2}
    assert doc.warnings == ("line 3, column 1: duplicate key 'a'; the last value is used",)


def test_kinds_not_kept_are_not_built() -> None:
    data = b"apiVersion: v1\nkind: Service\nspec: {ports: [{port: 80}]}\n---\napiVersion: v1\nkind: Pod\n"
    docs = list(load_documents(data, "t", keep_kind=lambda kind: kind == "Pod"))
    assert [d.obj for d in docs] == [{"apiVersion": "v1", "kind": "Service"}, {"apiVersion": "v1", "kind": "Pod"}]
    assert [d.line for d in docs] == [1, 5]
