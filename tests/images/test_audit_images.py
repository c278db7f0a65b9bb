"""``gpuguard audit --resolve-images`` on manifests that use images in a real registry on loopback.

The verdicts are typed by hand from what the images set (``conftest``): an image with
``NVIDIA_VISIBLE_DEVICES=all`` or a legacy CUDA image (only ``CUDA_VERSION``) in a pod that
requests no GPU exposes every GPU (GG101) on the assumed default node (envvar strategy, env
accepted from unprivileged containers); ``void`` exposes none; an image that cannot be read is
GG108 naming why, never a pass.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gpuguard.cli.main import cli
from tests.images.conftest import BASIC_USER, TOKEN_USER, StandardImages
from tests.images.registry_harness import RegistryServer, docker_config


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test reads ~/.docker or writes ~/.cache: DOCKER_CONFIG is an empty directory."""
    empty = tmp_path / "empty-docker-config"
    empty.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(empty))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    yield


def pod(name: str, image: str, *, gpus: int = 0, pull_secret: str | None = None) -> str:
    resources = f"\n    resources:\n      limits:\n        nvidia.com/gpu: {gpus}" if gpus else ""
    secrets = f"\n  imagePullSecrets:\n  - name: {pull_secret}" if pull_secret else ""
    return (
        f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: team-a\nspec:{secrets}\n"
        f"  containers:\n  - name: main\n    image: {image}{resources}\n"
    )


def write(tmp_path: Path, *docs: str, name: str = "workloads.yaml") -> str:
    path = tmp_path / name
    path.write_text("---\n".join(docs))
    return str(path)


def audit(tmp_path: Path, *args: str, resolve: bool = True) -> tuple[int, dict[str, Any], str]:
    extra = ["--resolve-images", "--cache-dir", str(tmp_path / "cache")] if resolve else []
    result = CliRunner().invoke(cli, ["audit", "--format", "json", *extra, *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout), result.stderr


def findings(report: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """``{"pod name": [(rule id, message), ...]}``."""
    out: dict[str, list[tuple[str, str]]] = {}
    for f in report["findings"]:
        out.setdefault(f["resource"]["name"], []).append((f["rule_id"], f["message"]))
    return out


def rules(report: dict[str, Any]) -> dict[str, set[str]]:
    return {name: {rule for rule, _ in items} for name, items in findings(report).items()}


def insecure(*servers: RegistryServer | str) -> list[str]:
    out: list[str] = []
    for s in servers:
        out += ["--insecure-registry", s if isinstance(s, str) else s.host]
    return out


def test_image_env_decides_gg101(tmp_path: Path, registry: RegistryServer, images: StandardImages) -> None:
    manifests = write(
        tmp_path,
        pod("exposes-all", images.all),
        pod("void", images.void),
        pod("legacy", images.legacy),
        pod("plain", images.plain),
    )
    code, report, _ = audit(tmp_path, *insecure(registry), manifests)
    assert code == 1
    assert rules(report) == {"exposes-all": {"GG101"}, "legacy": {"GG101"}}


def test_without_resolution_the_in_house_cuda_image_is_missed(
    tmp_path: Path, registry: RegistryServer, images: StandardImages
) -> None:
    """The blind spot the resolution closes: a name that matches no GPU image family is
    assumed not to set the variable."""
    manifests = write(tmp_path, pod("exposes-all", images.all), pod("legacy", images.legacy))
    code, report, _ = audit(tmp_path, manifests, resolve=False)
    assert (code, rules(report)) == (0, {})


def test_gpu_family_names_become_definite(tmp_path: Path, registry: RegistryServer, images: StandardImages) -> None:
    """``*/nvidia/cuda*`` images are GG108 uninspected; inspected they are GG101 or nothing."""
    manifests = write(tmp_path, pod("cuda-all", images.cuda_mirror), pod("cuda-void", images.cuda_mirror_void))
    _, before, _ = audit(tmp_path, manifests, resolve=False)
    assert rules(before) == {"cuda-all": {"GG108"}, "cuda-void": {"GG108"}}
    code, after, _ = audit(tmp_path, *insecure(registry), manifests)
    assert (code, rules(after)) == (1, {"cuda-all": {"GG101"}})


def test_gpu_request_with_void_image(tmp_path: Path, registry: RegistryServer, images: StandardImages) -> None:
    code, report, _ = audit(tmp_path, *insecure(registry), write(tmp_path, pod("trainer", images.void, gpus=2)))
    assert (code, rules(report)) == (0, {})


def test_unreadable_images_are_gg108_with_the_reason(
    tmp_path: Path, registry: RegistryServer, auth_registry: RegistryServer, images: StandardImages,
    private_images: dict[str, str],
) -> None:  # fmt: skip
    missing = f"{registry.host}/acme/trainer:no-such-tag"
    manifests = write(tmp_path, pod("missing", missing), pod("denied", private_images["basic"]))
    code, report, _ = audit(tmp_path, *insecure(registry, auth_registry), manifests)
    assert code == 1
    got = findings(report)
    assert {name: [rule for rule, _ in items] for name, items in got.items()} == {
        "missing": ["GG108"],
        "denied": ["GG108"],
    }
    [(_, missing_message)] = got["missing"]
    [(_, denied_message)] = got["denied"]
    assert "404" in missing_message or "not found" in missing_message
    assert missing in missing_message
    assert "401" in denied_message
    assert private_images["basic"] in denied_message


def test_registry_down_is_gg108(tmp_path: Path, registry: RegistryServer) -> None:
    from tests.images.registry_harness import closed_url, host_of

    down = host_of(closed_url())
    ref = f"{down}/acme/trainer:2024.1"
    code, report, _ = audit(tmp_path, *insecure(down), write(tmp_path, pod("down", ref)))
    assert code == 1
    assert rules(report) == {"down": {"GG108"}}
    assert ref in findings(report)["down"][0][1]


def test_private_registry_with_docker_config_gives_definite_findings(
    tmp_path: Path, auth_registry: RegistryServer, private_images: dict[str, str]
) -> None:
    """What a new user does: ``docker login`` (a config.json in $DOCKER_CONFIG), then audit.
    Run as a real process, as the user would."""
    config_dir = tmp_path / "docker-login"
    docker_config(config_dir, {auth_registry.host: BASIC_USER})
    manifests = write(tmp_path, pod("private", private_images["basic"]))
    env = {**os.environ, "DOCKER_CONFIG": str(config_dir), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    done = subprocess.run(
        [sys.executable, "-m", "gpuguard", "audit", "--format", "json", "--resolve-images",
         *insecure(auth_registry), manifests],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert rules(report) == {"private": {"GG101"}}
    assert BASIC_USER[1] not in done.stdout + done.stderr
    assert (tmp_path / "xdg" / "gpuguard").is_dir()  # the default cache is under XDG_CACHE_HOME


def test_token_registry_with_registry_auth_file(
    tmp_path: Path, token_registry: RegistryServer, private_images: dict[str, str]
) -> None:
    auth_file = docker_config(tmp_path / "auth", {token_registry.host: TOKEN_USER})
    manifests = write(tmp_path, pod("private", private_images["token"]))
    code, report, stderr = audit(tmp_path, *insecure(token_registry), "--registry-auth", str(auth_file), manifests)
    assert (code, rules(report)) == (1, {"private": {"GG101"}})
    assert TOKEN_USER[1] not in json.dumps(report) + stderr


def test_image_pull_secret_among_the_inputs(
    tmp_path: Path, auth_registry: RegistryServer, private_images: dict[str, str]
) -> None:
    auth = base64.b64encode(f"{BASIC_USER[0]}:{BASIC_USER[1]}".encode()).decode()
    dockerconfigjson = base64.b64encode(json.dumps({"auths": {auth_registry.host: {"auth": auth}}}).encode()).decode()
    secret = (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: regcred\n  namespace: team-a\n"
        f"type: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: {dockerconfigjson}\n"
    )
    manifests = write(tmp_path, secret, pod("private", private_images["basic"], pull_secret="regcred"))
    code, report, stderr = audit(tmp_path, *insecure(auth_registry), manifests)
    assert (code, rules(report)) == (1, {"private": {"GG101"}})
    assert BASIC_USER[1] not in json.dumps(report) + stderr
    assert auth not in json.dumps(report) + stderr


def test_multi_platform(tmp_path: Path, registry: RegistryServer, images: StandardImages) -> None:
    manifests = write(tmp_path, pod("multi", images.multi))
    assert rules(audit(tmp_path, *insecure(registry), manifests)[1]) == {"multi": {"GG101"}}  # linux/amd64
    _, arm, _ = audit(tmp_path, *insecure(registry), "--platform", "linux/arm64", manifests)
    assert rules(arm) == {}
    _, every, _ = audit(tmp_path, *insecure(registry), "--all-platforms", manifests)
    [(rule, message)] = findings(every)["multi"]
    assert rule == "GG108"
    assert "linux/amd64" in message
    assert "linux/arm64" in message


def test_second_run_offline_from_the_cache(tmp_path: Path, registry: RegistryServer, images: StandardImages) -> None:
    manifests = write(tmp_path, pod("exposes-all", images.all), pod("void", images.void))
    first = audit(tmp_path, *insecure(registry), manifests)
    offline = audit(tmp_path, *insecure(registry), "--offline", manifests)
    assert rules(first[1]) == rules(offline[1]) == {"exposes-all": {"GG101"}}
    # A cache of its own knows nothing: offline, every image stays unknown.
    empty = CliRunner().invoke(
        cli, ["audit", "--format", "json", "--resolve-images", "--offline", "--cache-dir", str(tmp_path / "other"),
              manifests],
    )  # fmt: skip
    assert rules(json.loads(empty.stdout)) == {"exposes-all": {"GG108"}, "void": {"GG108"}}


def test_dockerfile_from_an_exposing_base(tmp_path: Path, registry: RegistryServer, images: StandardImages) -> None:
    """GG109: the base image's env is read through the registry."""
    exposed = tmp_path / "exposed" / "Dockerfile"
    exposed.parent.mkdir()
    exposed.write_text(f"FROM {images.all}\nRUN echo build\nCMD [\"serve\"]\n")
    fixed = tmp_path / "fixed" / "Dockerfile"
    fixed.parent.mkdir()
    fixed.write_text(f"FROM {images.all}\nENV NVIDIA_VISIBLE_DEVICES=void\n")
    safe_base = tmp_path / "safe" / "Dockerfile"
    safe_base.parent.mkdir()
    safe_base.write_text(f"ARG BASE={images.void}\nFROM $BASE\n")
    _, report, _ = audit(tmp_path, *insecure(registry), str(exposed), str(fixed), str(safe_base))
    by_file = {Path(f["location"]["path"]).parent.name: f["rule_id"] for f in report["findings"]}
    assert by_file == {"exposed": "GG109"}


def test_concurrent_processes_share_one_cache(tmp_path: Path, registry: RegistryServer, images: StandardImages) -> None:
    """Four audits at once on one cache directory: each gets the full answer, and the cache
    they wrote together then answers alone, offline."""
    manifests = write(tmp_path, pod("exposes-all", images.all), pod("void", images.void), pod("legacy", images.legacy),
                      pod("multi", images.multi), pod("docker", images.docker_all))  # fmt: skip
    cache = str(tmp_path / "shared-cache")
    command = [sys.executable, "-m", "gpuguard", "audit", "--format", "json", "--resolve-images", "--cache-dir", cache,
               *insecure(registry), manifests]  # fmt: skip
    env = {**os.environ}
    running = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
               for _ in range(4)]  # fmt: skip
    expected = {"exposes-all": {"GG101"}, "legacy": {"GG101"}, "multi": {"GG101"}, "docker": {"GG101"}}
    for process in running:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 1, err
        assert rules(json.loads(out)) == expected
    offline = subprocess.run([*command, "--offline"], capture_output=True, text=True, env=env, timeout=120, check=False)
    assert rules(json.loads(offline.stdout)) == expected


def test_tls_registry_with_ca_file(tmp_path: Path, tls_registry: RegistryServer, tls_image: str) -> None:
    manifests = write(tmp_path, pod("secure", tls_image))
    _, unverified, _ = audit(tmp_path, manifests)
    [(rule, message)] = findings(unverified)["secure"]
    assert rule == "GG108"
    assert tls_image in message
    code, verified, _ = audit(tmp_path, "--ca-file", str(tls_registry.ca_path), manifests)
    assert (code, rules(verified)) == (1, {"secure": {"GG101"}})
