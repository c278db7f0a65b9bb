"""Bad inputs: one error line each, with file and line; the readable rest is reported; exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.audit.helpers import EXAMPLES, ROOT, audit_json, error_lines

GOOD = (EXAMPLES / "workloads" / "training-job.yaml").read_text()


@pytest.mark.parametrize(
    ("content", "line", "says"),
    [
        (GOOD + "---\nkind: Pod\nmetadata: {name: x\n  spec: [\n", 28, "line 31, column 7: did not find expected"),
        (GOOD + "---\napiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers: 3\n", 29,
         "spec.containers: expected a list, got number"),
        (GOOD + "---\napiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n  - image: y\n", 29,
         "name: required field is missing"),
        ((ROOT / "tests/fixtures/manifests/billion-laughs.yaml").read_text() + "---\n" + GOOD, 2, "alias bomb"),
    ],
    ids=["malformed", "wrong-type", "missing-field", "alias-bomb"],
)
def test_one_error_line_with_file_and_line(tmp_path: Path, content: str, line: int, says: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    code, report, err = audit_json(str(path))
    assert code == 2
    (error,) = report["errors"]
    assert error["location"] == {"path": str(path), "line": line}
    assert says in error["message"]
    (printed,) = error_lines(err)
    assert printed.startswith(f"gpuguard: error: {path}:{line}: ")
    assert [f["rule_id"] for f in report["findings"]] == ["GG102"]  # the good document is still judged


def test_binary_file(tmp_path: Path) -> None:
    (tmp_path / "blob.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00IHDR")
    (tmp_path / "job.yaml").write_text(GOOD)
    code, report, err = audit_json(str(tmp_path))
    assert code == 2
    (error,) = report["errors"]
    assert error["location"]["path"].endswith("blob.yaml") and "binary input" in error["message"]
    assert len(error_lines(err)) == 1
    assert [f["rule_id"] for f in report["findings"]] == ["GG102"]


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "latin1.yaml").write_bytes("kind: Pod\nmetadata: {name: caf\u00e9}\n".encode("latin-1"))
    code, report, _ = audit_json(str(tmp_path))
    assert code == 2 and "not UTF-8" in report["errors"][0]["message"]


def test_bad_toml(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("accept-nvidia-visible-devices-envvar-when-unprivileged = \n")
    code, report, _ = audit_json(str(tmp_path))
    assert code == 2
    (error,) = report["errors"]
    assert error["location"]["path"].endswith("config.toml") and "invalid TOML" in error["message"]


def test_bad_cluster_policy_is_a_read_error_and_the_node_is_assumed(tmp_path: Path) -> None:
    (tmp_path / "cp.yaml").write_text(
        "apiVersion: nvidia.com/v1\nkind: ClusterPolicy\nmetadata: {name: p}\nspec:\n  cdi: {enabled: yes-please}\n"
    )
    code, report, _ = audit_json("--operator-version", "25.3.4", str(tmp_path))
    assert code == 2
    assert report["errors"][0]["location"] == {"path": str(tmp_path / "cp.yaml"), "line": 1}


def test_empty_and_comment_only_files_are_fine(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "comments.yaml").write_text("# nothing\n---\n# still nothing\n")
    code, report, _ = audit_json(str(tmp_path))
    assert code == 0 and report["errors"] == []


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--operator-version", "banana"], "--operator-version"),
        (["--toolkit-version", "x.y"], "--toolkit-version"),
        (["--profile", "/does/not/exist.yaml"], "--profile /does/not/exist.yaml"),
        (["--ignore-file", "/does/not/exist.yaml"], "/does/not/exist.yaml"),
        (["--format", "xml"], "xml"),
    ],
)
def test_usage_errors_exit_2(args: list[str], says: str) -> None:
    from tests.audit.helpers import audit

    code, _, err = audit(*args, str(EXAMPLES / "workloads" / "safe"))
    assert code == 2
    assert says in err
