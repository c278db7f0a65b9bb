"""Property tests for the simulate question reader: bad input only ever raises InputError."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gpuguard.model.errors import InputError
from gpuguard.sources.simulate_input import read_question

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)

env_entries = st.lists(
    st.sampled_from(["NVIDIA_VISIBLE_DEVICES", "CUDA_VERSION", "NVIDIA_IMEX_CHANNELS", "X"]).flatmap(
        lambda name: st.text(alphabet="allvoidnone,GPU-0123 ", max_size=15).map(lambda val: f"{name}={val}")
    ),
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_arbitrary_documents_raise_only_input_errors(doc: object) -> None:
    try:
        read_question(doc)
    except InputError as exc:
        assert exc.where is not None


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "toolkit": st.fixed_dictionaries(
                {}, optional={"version": st.sampled_from(["1.0.5", "1.11.0", "1.17.8", "1.20.0", "x", "2.0.0"]),
                              "config": st.text(max_size=60)}),
            "container": st.fixed_dictionaries(
                {}, optional={"process": st.fixed_dictionaries({}, optional={"env": env_entries}),
                              "annotations": st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=2)}),
            "component": st.sampled_from(["runtime", "hook", "other"]),
        },
    )
)
def test_shaped_documents_raise_only_input_errors(doc: dict[str, object]) -> None:
    try:
        read_question(doc)
    except InputError as exc:
        assert str(exc)
