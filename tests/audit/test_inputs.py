"""Inputs: directories with include/exclude, stdin, missing paths, big streams read in windows."""

from __future__ import annotations

from pathlib import Path

from gpuguard.sources.documents import load_documents
from gpuguard.sources.inputs import Window, list_inputs, read_windows
from tests.audit.helpers import EXAMPLES, audit, audit_json, error_lines

GPU_POD = """apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: tenant}
spec:
  containers:
  - name: main
    image: busybox
    env: [{name: NVIDIA_VISIBLE_DEVICES, value: all}]
"""


def _tree(tmp_path: Path) -> Path:
    (tmp_path / "apps" / "nested").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    (tmp_path / "apps" / "a.yaml").write_text(GPU_POD % "a")
    (tmp_path / "apps" / "nested" / "b.yml").write_text(GPU_POD % "b")
    (tmp_path / "apps" / "c.json").write_text('{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}}')
    (tmp_path / "apps" / "notes.txt").write_text("not a manifest: {")
    (tmp_path / ".git" / "d.yaml").write_text(GPU_POD % "d")
    (tmp_path / "apps" / ".hidden.yaml").write_text(GPU_POD % "e")
    return tmp_path


def _names(report: dict) -> set[str]:
    return {f["resource"]["name"] for f in report["findings"] if f["resource"]}


def test_directories_recurse_skip_hidden_and_keep_the_default_globs(tmp_path: Path) -> None:
    code, report, _ = audit_json(str(_tree(tmp_path)))
    assert code == 1
    assert _names(report) == {"a", "b"}
    assert report["summary"]["files"] == 3  # a.yaml, b.yml, c.json; not notes.txt, .git, .hidden.yaml


def test_include_and_exclude(tmp_path: Path) -> None:
    root = str(_tree(tmp_path))
    assert _names(audit_json("--include", "*.yml", root)[1]) == {"b"}
    assert _names(audit_json("--exclude", "nested", root)[1]) == {"a"}
    assert _names(audit_json("--exclude", "a.yaml", root)[1]) == {"b"}


def test_stdin(tmp_path: Path) -> None:
    code, report, _ = audit_json("-", stdin=GPU_POD % "piped")
    assert code == 1
    (finding,) = report["findings"]
    assert finding["resource"]["name"] == "piped"
    assert finding["location"] == {"path": "<stdin>", "line": 1}


def test_no_paths_reads_piped_stdin() -> None:
    code, out, _ = audit("--format", "json", stdin=GPU_POD % "piped")
    assert code == 1 and '"piped"' in out


def test_missing_path_is_an_error_and_the_rest_is_reported() -> None:
    code, report, err = audit_json("does/not/exist.yaml", str(EXAMPLES / "workloads" / "training-job.yaml"))
    assert code == 2
    assert error_lines(err) == ["gpuguard: error: does/not/exist.yaml: no such file or directory"]
    assert [f["rule_id"] for f in report["findings"]] == ["GG102"]


def test_list_inputs_orders_files() -> None:
    files, errors = list_inputs([str(EXAMPLES / "gpu-operator")])
    assert errors == []
    assert [Path(f).name for f in files] == sorted(Path(f).name for f in files)


def test_windows_cut_at_separators_and_keep_lines(tmp_path: Path) -> None:
    docs = [GPU_POD % f"p{i}" for i in range(200)]
    path = tmp_path / "big.yaml"
    path.write_text("---\n".join(docs))
    windows = [w for w in read_windows(str(path), window=1000) if isinstance(w, Window)]
    assert len(windows) > 10
    whole = [(d.line, d.obj) for d in load_documents(path.read_bytes(), "big")]
    parts = [(d.line, d.obj) for w in windows for d in load_documents(w.data, "big", start_line=w.line)]
    assert parts == whole


def test_json_is_one_window(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text('{"kind": "List", "items": []}\n' * 1)
    (window,) = read_windows(str(path), window=4)
    assert isinstance(window, Window) and window.json


def test_a_document_over_the_limit_ends_the_file_with_an_error(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("a: " + "x" * 5000 + "\n")
    (error,) = list(read_windows(str(path), window=1000, max_bytes=2000))
    assert not isinstance(error, Window) and "larger than the limit" in error.message


def test_deferred_pods_are_bounded(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from gpuguard.audit import run

    monkeypatch.setattr(run, "MAX_DEFERRED", 2)
    pod = ("apiVersion: v1\nkind: Pod\nmetadata: {name: p%d, namespace: t}\nspec:\n  containers:\n  - name: c\n"
           "    image: busybox\n    envFrom: [{configMapRef: {name: late}}]\n")
    late = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: late, namespace: t}\n" \
           "data: {NVIDIA_VISIBLE_DEVICES: all}\n"
    (tmp_path / "s.yaml").write_text("---\n".join([*(pod % i for i in range(4)), late]))
    _, report, _ = audit_json(str(tmp_path))
    rules = {f["resource"]["name"]: f["rule_id"] for f in report["findings"]}
    assert rules == {"p0": "GG108", "p1": "GG108", "p2": "GG101", "p3": "GG101"}
    assert any("2 pods were judged before" in n for n in report["profile"]["notes"])
