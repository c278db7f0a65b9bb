"""What the faces share: the usage-error exit, audit settings files, the input, node and image options."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

import click

EXIT_FINDINGS = 1
EXIT_INPUT = 2

F = TypeVar("F", bound=Callable[..., Any])


class UsageFailure(click.ClickException):
    """Bad input or options: one line on stderr, exit status 2."""

    exit_code = EXIT_INPUT

    def show(self, file: object = None) -> None:
        click.echo(f"gpuguard: error: {self.message}", err=True)


def load_audit_settings(path: str | None) -> object:
    """The ``--config`` file (audit settings under ``rules:`` or at the top), or the defaults."""
    from gpuguard.rules.settings import AuditSettings, load_settings  # noqa: PLC0415 - lazy: fast startup
    from gpuguard.sources.documents import load_document  # noqa: PLC0415

    if path is None:
        return AuditSettings()
    try:
        with open(path, "rb") as f:
            doc = load_document(f.read(), path)
    except OSError as exc:
        raise UsageFailure(f"--config {path}: cannot read: {exc.strerror or exc}") from None
    if isinstance(doc, dict) and "rules" in doc:
        return load_settings(doc["rules"], f"{path}: rules")
    return load_settings(doc, path)


_INPUT_AND_NODE_OPTIONS = (
    click.option("--include", multiple=True, metavar="GLOB", help="In directories, read only files matching GLOB "
                 "(repeatable; default: *.yaml *.yml *.json *.toml Dockerfile*)."),
    click.option("--exclude", multiple=True, metavar="GLOB",
                 help="In directories, skip files and folders matching GLOB."),
    click.option("--operator-version", metavar="VERSION", help="GPU Operator release of the GPU nodes (e.g. 25.3.4)."),
    click.option("--toolkit-version", metavar="VERSION", help="NVIDIA Container Toolkit release on the GPU nodes."),
    click.option("--profile", "profile", type=click.Path(dir_okay=False), metavar="FILE",
                 help="Node description (YAML, the node: section of simulate's pod form)."),
    click.option("--config", "config", type=click.Path(dir_okay=False), metavar="FILE",
                 help="Audit settings YAML: trustedNamespaces, exempt, gpuImages, cdiAnnotationPrefixes."),
)  # fmt: skip


_IMAGE_OPTIONS = (
    click.option("--resolve-images", is_flag=True,
                 help="Read each image's env from its registry (or --image-source) instead of assuming it."),
    click.option("--platform", default="linux/amd64", show_default=True, metavar="OS/ARCH",
                 help="Platform of multi-platform images (and of TARGET* build args in Dockerfiles)."),
    click.option("--all-platforms", is_flag=True, help="Inspect every platform; a finding when they disagree."),
    click.option("--registry-auth", multiple=True, type=click.Path(dir_okay=False), metavar="FILE",
                 help="Docker config file with registry credentials (repeatable; default: $DOCKER_CONFIG)."),
    click.option("--insecure-registry", multiple=True, metavar="HOST[:PORT]",
                 help="Registry reached over plain HTTP (repeatable)."),
    click.option("--ca-file", type=click.Path(dir_okay=False), metavar="FILE",
                 help="CA bundle for registries with a private CA."),
    click.option("--cache-dir", type=click.Path(file_okay=False), metavar="DIR",
                 help="Image config cache (default: $XDG_CACHE_HOME/gpuguard)."),
    click.option("--offline", is_flag=True, help="Use only the cache and --image-source: no network."),
    click.option("--image-source", multiple=True, type=click.Path(), metavar="PATH",
                 help="OCI layout directory, docker-save or OCI archive to read images from (repeatable)."),
)  # fmt: skip

_NEEDS_RESOLVE = ("all_platforms", "registry_auth", "insecure_registry", "ca_file", "cache_dir", "offline",
                  "image_source")  # fmt: skip
_PLATFORM = re.compile(r"[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?")


def image_options(command: F) -> F:
    """``--resolve-images`` and its companions (registry access, cache, air-gapped image sources)."""
    for option in reversed(_IMAGE_OPTIONS):
        command = option(command)
    return command


def check_image_options(values: dict[str, Any]) -> None:
    """Companions of ``--resolve-images`` without it, or a malformed ``--platform``: a usage error."""
    if not _PLATFORM.fullmatch(values["platform"]):
        raise UsageFailure(f"--platform {values['platform']}: expected OS/ARCH[/VARIANT], e.g. linux/arm64")
    if values["resolve_images"]:
        return
    for key in _NEEDS_RESOLVE:
        if values[key]:
            raise UsageFailure(f"--{key.replace('_', '-')} needs --resolve-images")


_CLUSTER_OPTIONS = (
    click.option("--cluster", is_flag=True,
                 help="Audit the live cluster (kubeconfig or in-cluster service account; get/list only)."),
    click.option("--kubeconfig", type=click.Path(dir_okay=False), metavar="FILE",
                 help="With --cluster: the kubeconfig (default: $KUBECONFIG, ~/.kube/config)."),
    click.option("--context", metavar="NAME", help="With --cluster: the kubeconfig context (default: current)."),
    click.option("--namespace", "-n", metavar="NS", help="With --cluster: pods of this namespace only (default: all)."),
    click.option("--read-pull-secrets", is_flag=True,
                 help="With --cluster --resolve-images: get the Secrets the pods name in imagePullSecrets, for "
                      "private registries (needs get on those Secrets; their contents are never printed)."),
)  # fmt: skip
_NEEDS_CLUSTER = ("kubeconfig", "context", "namespace", "read_pull_secrets")


def cluster_options(command: F) -> F:
    """``--cluster`` and how to reach the API server."""
    for option in reversed(_CLUSTER_OPTIONS):
        command = option(command)
    return command


def check_cluster_options(values: dict[str, Any], conflicts: dict[str, Any]) -> None:
    """Cluster companions without ``--cluster``, or file-audit options with it: a usage error."""
    if not values["cluster"]:
        for key in _NEEDS_CLUSTER:
            if values[key]:
                raise UsageFailure(f"--{key.replace('_', '-')} needs --cluster")
        return
    for flag, value in conflicts.items():
        if value:
            raise UsageFailure(f"{flag} cannot be used with --cluster")


def input_and_node_options(command: F) -> F:
    """``--include/--exclude`` and the node options, shared by ``audit`` and ``fix``."""
    for option in reversed(_INPUT_AND_NODE_OPTIONS):
        command = option(command)
    return command
