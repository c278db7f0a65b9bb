"""Properties of the workload fixer over generated manifests (indent styles, env shapes, comments).

After the edit: the target container has exactly one NVIDIA_VISIBLE_DEVICES entry, value "void";
every other env entry, envFrom and every other container are unchanged; the other documents are
byte-for-byte the same; and a second edit changes nothing.
"""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuguard.fixes.workload import edit_manifest

NAMES = st.sampled_from(["A", "B", "NVIDIA_VISIBLE_DEVICES", "PATH", "NVIDIA_DRIVER_CAPABILITIES"])
ENTRY = st.one_of(
    st.tuples(NAMES, st.sampled_from(["all", '"0"', "'none'", "x y", '""']), st.just("value")),
    st.tuples(NAMES, st.just("{configMapKeyRef: {name: cm, key: k}}"), st.just("valueFrom")),
)


def _container(
    name: str, env: list | None, *, env_from: bool, comment: bool, ind: str, dash: str, flow: bool
) -> list[str]:
    if flow and not env_from:  # the whole container in flow style
        items = ", ".join(f"{{name: {k}, {kind}: {value}}}" for k, value, kind in env or [])
        return [f"{dash}- {{name: {name}, image: cuda:12" + (f", env: [{items}]}}" if env is not None else "}")]
    lines = [f"{dash}- name: {name}" + ("  # the app" if comment else ""), f"{ind}image: cuda:12"]
    if env_from:
        lines += [f"{ind}envFrom:", f"{ind}{dash}- configMapRef: {{name: cm}}"]
    if env is not None and flow:
        lines.append(f"{ind}env: [" + ", ".join(f"{{name: {k}, {kind}: {value}}}" for k, value, kind in env) + "]")
    elif env is not None:
        lines.append(f"{ind}env:")
        for key, value, kind in env:
            lines += [f"{ind}{dash}- name: {key}", f"{ind}{dash}  {kind}: {value}"]
            if comment:
                lines.append(f"{ind}{dash}  # note")
    return lines


@st.composite
def manifests(draw: st.DrawFn) -> tuple[str, str]:
    dash = draw(st.sampled_from(["", "  "]))  # "- item" at the key's column, or indented
    base = "      "
    ind = base + dash + "  "
    containers: list[str] = []
    for i in range(draw(st.integers(1, 3))):
        env = draw(st.none() | st.lists(ENTRY, max_size=4))
        lines = _container(
            f"c{i}", env, env_from=draw(st.booleans()), comment=draw(st.booleans()), ind=ind, dash=dash,
            flow=draw(st.booleans()),
        )  # fmt: skip
        containers += [base + lines[0], *lines[1:]]  # the "- " line sits under "containers:"
    doc = "\n".join(
        [
            "# rendered by helm",
            "apiVersion: apps/v1",
            "kind: Deployment",
            "metadata: {name: d, namespace: n}",
            "spec:",
            "  template:",
            "    spec:",
            "      containers:",
            *containers,
        ]
    )
    other = "---\n# untouched\nkind: Service\nmetadata: {name: 's'}  # quoted\n"
    return doc + "\n" + other, other


def _env(container: dict) -> list:
    return container.get("env") or []


@settings(max_examples=150, deadline=None)
@given(manifests(), st.data())
def test_edit_properties(case: tuple[str, str], data: st.DataObject) -> None:
    text, other = case
    before = yaml.safe_load_all(text)
    doc = next(before)
    count = len(doc["spec"]["template"]["spec"]["containers"])
    target = data.draw(st.integers(0, count - 1))
    path = f"spec.template.spec.containers[{target}]"
    result = edit_manifest(text, [(0, path)])
    assert result.skipped == ()
    assert result.text.endswith(other)
    after = list(yaml.safe_load_all(result.text))
    containers_before = doc["spec"]["template"]["spec"]["containers"]
    containers_after = after[0]["spec"]["template"]["spec"]["containers"]
    for i, (old, new) in enumerate(zip(containers_before, containers_after, strict=True)):
        if i != target:
            assert new == old
            continue
        nvd = [e for e in _env(new) if e["name"] == "NVIDIA_VISIBLE_DEVICES"]
        assert nvd == [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "void"}]
        rest_old = [e for e in _env(old) if e["name"] != "NVIDIA_VISIBLE_DEVICES"]
        rest_new = [e for e in _env(new) if e["name"] != "NVIDIA_VISIBLE_DEVICES"]
        assert rest_new == rest_old
        assert new.get("envFrom") == old.get("envFrom")
        assert {k: v for k, v in new.items() if k != "env"} == {k: v for k, v in old.items() if k != "env"}
    again = edit_manifest(result.text, [(0, path)])
    assert again.text == result.text
    # comments survive: every comment line of the input is still there
    comments = [line.strip() for line in text.splitlines() if "#" in line and "NVIDIA_VISIBLE_DEVICES" not in line]
    kept = result.text
    for comment in comments:
        if comment.startswith("# note"):
            continue  # a note inside a replaced NVIDIA_VISIBLE_DEVICES entry goes with it
        assert comment.split("#", 1)[1] in kept
