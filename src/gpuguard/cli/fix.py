"""``gpuguard fix``: print (or, with ``--write``, apply) the remedy for each finding.

Runs the audit, hands the findings, the node profile and the text of the
files they point at to :func:`gpuguard.fixes.plan.plan`, and prints the plan:
unified diffs for file edits, command blocks for Helm/kubectl/nvidia-ctk. With
``--write`` the file edits are applied in place (temp file + rename, so a
crash never leaves half a file) and the inputs are audited again to confirm
that the findings the edits address are gone. Commands are never run.

Exit status: 0 the plan was printed (and, with ``--write``, every edited
finding is gone); 1 ``--write`` left some of them; 2 usage error or an input
that could not be read.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Sequence

import click

from gpuguard.cli.options import EXIT_FINDINGS, EXIT_INPUT, UsageFailure, input_and_node_options, load_audit_settings
from gpuguard.model.errors import InputError
from gpuguard.model.report import Report

STDIN_PATHS = ("-", "<stdin>")


@click.command("fix")
@click.argument("paths", nargs=-1, metavar="[PATHS...|-]")
@click.option("--write", is_flag=True, help="Apply the file edits in place, then audit again to confirm.")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, help="Plan format."
)
@click.option("--kustomize", is_flag=True, help="Also print strategic-merge patches for the workloads.")
@input_and_node_options
def fix_command(
    *,
    paths: tuple[str, ...],
    write: bool,
    fmt: str,
    kustomize: bool,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    operator_version: str | None,
    toolkit_version: str | None,
    profile: str | None,
    config: str | None,
) -> None:
    """Print the remedy for every finding (--write: apply the file edits).

    Workloads get NVIDIA_VISIBLE_DEVICES=void on containers that request no
    GPU (comment- and order-preserving edits); GPU Operator settings get Helm
    arguments, a values overlay and a ClusterPolicy JSON patch that append to
    the existing env lists; config.toml gets its keys moved to the top level;
    Dockerfiles built on GPU images get ENV NVIDIA_VISIBLE_DEVICES=void.
    """
    from gpuguard.audit.run import AuditOptions, audit  # noqa: PLC0415 - lazy: other commands start fast
    from gpuguard.fixes.plan import is_dockerfile, plan  # noqa: PLC0415
    from gpuguard.sources.inputs import list_inputs  # noqa: PLC0415

    if not paths:
        if sys.stdin.isatty():
            raise UsageFailure("give files, directories, or - to read standard input")
        paths = ("-",)
    stdin = sys.stdin.buffer.read() if "-" in paths else None
    if write and stdin is not None:
        raise UsageFailure("--write edits files in place; standard input cannot be written (drop --write)")
    settings = load_audit_settings(config)
    options = AuditOptions(include=include, exclude=exclude, operator_version=operator_version,
                           toolkit_version=toolkit_version, profile=profile, stdin=stdin)  # fmt: skip
    try:
        report = audit(paths, settings, options)  # type: ignore[arg-type]
        listed, _ = list_inputs(paths, include=include, exclude=exclude)
    except InputError as exc:
        raise UsageFailure(str(exc)) from None
    dockerfiles = [p for p in listed if p not in STDIN_PATHS and is_dockerfile(p)]
    wanted = {f.location.path for f in report.findings if f.location is not None} | set(dockerfiles)
    files = _read_texts(wanted, stdin)
    is_gpu_image = getattr(settings, "is_gpu_image", None)
    the_plan = plan(report.findings, report.profile, files, dockerfiles=dockerfiles, is_gpu_image=is_gpu_image)

    if fmt == "json":
        click.echo(json.dumps({"schema": "gpuguard.fix/v1", **the_plan.as_dict()}, indent=2))
    else:
        click.echo(the_plan.render_text(kustomize=kustomize), nl=False)
    for error in report.errors:
        where = error.location.path if error.location else ""
        click.echo(
            f"gpuguard: error: {where}: {error.message}" if where else f"gpuguard: error: {error.message}", err=True
        )
    if not write:
        click.echo(_summary(the_plan.edits, the_plan.commands, the_plan.manual, applied=False), err=True)
        sys.exit(EXIT_INPUT if report.errors else 0)

    written = []
    for edit in the_plan.edits:
        if edit.path in STDIN_PATHS:
            continue
        try:
            _write_atomic(edit.path, edit.before, edit.after)
        except (OSError, _Changed) as exc:
            click.echo(f"gpuguard: error: {edit.path}: not written: {exc}", err=True)
            continue
        written.append(edit)
        click.echo(f"gpuguard: wrote {edit.path}", err=True)
    remaining = _still_there(audit(paths, settings, options), [f for e in written for f in e.fixes])  # type: ignore[arg-type]
    click.echo(_summary(the_plan.edits, the_plan.commands, the_plan.manual, applied=True), err=True)
    for fingerprint in remaining:
        click.echo(f"gpuguard: still found after the edit: {fingerprint}", err=True)
    if report.errors:
        sys.exit(EXIT_INPUT)
    sys.exit(EXIT_FINDINGS if remaining else 0)


class _Changed(Exception):
    """The file changed between the audit and the write; it is left alone."""


def _read_texts(paths: set[str], stdin: bytes | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for path in paths:
        try:
            if path in STDIN_PATHS:
                if stdin is None:
                    continue
                data = stdin
            else:
                with open(path, "rb") as f:
                    data = f.read()
            out[path] = data.decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # the audit reported it already
    return out


def _write_atomic(path: str, before: str, after: str) -> None:
    """Replace the file's content via a temp file in the same folder and a rename; mode bits kept."""
    with open(path, "rb") as f:
        if f.read().decode("utf-8") != before:
            raise _Changed("changed since it was read")
    mode = os.stat(path).st_mode & 0o7777
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".gpuguard-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(after.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _still_there(report: Report, fingerprints: Sequence[str]) -> list[str]:
    now = {f.fingerprint for f in report.findings}
    return sorted({fp for fp in fingerprints if fp in now})


def _summary(edits: Sequence[object], commands: Sequence[object], manual: Sequence[object], *, applied: bool) -> str:
    verb = "applied" if applied else "proposed"
    return (
        f"gpuguard: {len(edits)} file edits {verb}, {len(commands)} command blocks to run by hand, "
        f"{len(manual)} findings left to a person"
    )
