"""``gpuguard audit --cluster --resolve-images``: the images live pods run, inspected in a real registry.

The cluster is the API server stand-in's realistic snapshot (``tests/cluster/conftest.py``) plus
pods on the H100 node (a host toolkit the operator does not configure: judged on the most exposed
common setup, where the image's ``NVIDIA_VISIBLE_DEVICES`` decides).  Images come from the real
registry of ``tests/images/conftest.py``: ``acme/trainer`` sets ``all``, ``acme/inference`` sets
``void``, and neither name belongs to a GPU image family, so without inspection both are assumed
to set nothing.  Expected verdicts are typed from those facts.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gpuguard.cli.main import cli
from tests.cluster.apiserver import ApiServer, serve
from tests.cluster.conftest import H100, _c, _pod, realistic_cluster
from tests.images.conftest import BASIC_USER, ENV_ALL, ENV_VOID, StandardImages
from tests.images.registry_harness import RegistryServer, push_image


@pytest.fixture
def cluster(images: StandardImages, tmp_path: Path) -> Iterator[ApiServer]:
    snapshot = copy.deepcopy(realistic_cluster())
    snapshot.objects["pods"] += [
        _pod("trainer-dev-0", "ml-dev", H100, [_c("main", images.all)]),
        _pod("inference-dev-0", "ml-dev", H100, [_c("main", images.void)]),
        _pod("web-dev-0", "ml-dev", H100, [_c("main", images.plain)]),
    ]
    with serve(snapshot, tmp_path) as server:
        yield server


def _audit(server: ApiServer, tmp_path: Path, *extra: str) -> tuple[dict[str, Any], str]:
    kubeconfig = server.kubeconfig(tmp_path / "kubeconfig")
    cache = ["--cache-dir", str(tmp_path / "cache")] if "--resolve-images" in extra else []
    result = CliRunner().invoke(cli, ["audit", "--cluster", "--kubeconfig", str(kubeconfig), "--format", "json",
                                      *cache, *extra])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout), result.stderr


def _rules_of(report: dict[str, Any], pod: str) -> set[str]:
    return {f["rule_id"] for f in report["findings"] if f["resource"] and f["resource"]["name"] == pod}


def test_without_inspection_the_in_house_image_is_assumed_to_set_nothing(
    cluster: ApiServer, tmp_path: Path, images: StandardImages
) -> None:
    report, _ = _audit(cluster, tmp_path)
    assert _rules_of(report, "trainer-dev-0") == set()


def test_inspected_images_decide_each_pod_on_its_node(
    cluster: ApiServer, tmp_path: Path, images: StandardImages
) -> None:
    report, _ = _audit(cluster, tmp_path, "--resolve-images", "--insecure-registry", images.host)
    assert _rules_of(report, "trainer-dev-0") == {"GG101"}  # the image sets NVIDIA_VISIBLE_DEVICES=all
    trainer = next(f for f in report["findings"] if f["resource"]["name"] == "trainer-dev-0")
    assert trainer["node"] == H100
    assert _rules_of(report, "inference-dev-0") == set()  # void
    assert _rules_of(report, "web-dev-0") == set()  # sets nothing
    notes = "\n".join(report["profile"]["notes"])
    assert "images inspected" in notes


def test_an_image_the_registry_lacks_stays_unknown(cluster: ApiServer, tmp_path: Path, images: StandardImages) -> None:
    missing = f"{images.host}/acme/never-pushed:1.0"
    cluster.snapshot.objects["pods"].append(_pod("ghost-0", "ml-dev", H100, [_c("main", missing)]))
    report, _ = _audit(cluster, tmp_path, "--resolve-images", "--insecure-registry", images.host)
    ghost = [f for f in report["findings"] if f["resource"] and f["resource"]["name"] == "ghost-0"]
    assert [f["rule_id"] for f in ghost] == ["GG108"]
    assert "could not be inspected" in ghost[0]["message"]


def _private_cluster(tmp_path: Path, image: str, registry_host: str) -> tuple[Iterator[ApiServer], str]:
    auth = base64.b64encode(f"{BASIC_USER[0]}:{BASIC_USER[1]}".encode()).decode()
    config = json.dumps({"auths": {registry_host: {"auth": auth}}})
    snapshot = copy.deepcopy(realistic_cluster())
    snapshot.objects["pods"].append(
        _pod("private-0", "ml-dev", H100, [_c("main", image)], imagePullSecrets=[{"name": "regcred"}]))
    snapshot.objects["secrets"] = [{
        "metadata": {"name": "regcred", "namespace": "ml-dev", "uid": "5e1c2a4e-0000-4000-8000-000000000001"},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64.b64encode(config.encode()).decode()},
    }]
    return serve(snapshot, tmp_path), auth


def test_pull_secrets_named_by_pods_open_a_private_registry(
    tmp_path: Path, private_images: dict[str, str], auth_registry: RegistryServer
) -> None:
    server_cm, auth = _private_cluster(tmp_path, private_images["basic"], auth_registry.host)
    with server_cm as server:
        without, _ = _audit(server, tmp_path, "--resolve-images", "--insecure-registry", auth_registry.host)
        assert _rules_of(without, "private-0") == {"GG108"}  # the registry refuses: unknown, never a pass
        report, stderr = _audit(server, tmp_path, "--resolve-images", "--read-pull-secrets",
                                "--insecure-registry", auth_registry.host)
        assert _rules_of(report, "private-0") == {"GG101"}
        gets = [p for method, p, _ in server.requests if method == "GET" and "/secrets/" in p]
        assert gets == ["/api/v1/namespaces/ml-dev/secrets/regcred"]  # one get, no list of Secrets
        assert BASIC_USER[1] not in json.dumps(report) + stderr and auth not in json.dumps(report) + stderr


def test_a_forbidden_pull_secret_is_one_error_and_the_audit_goes_on(
    tmp_path: Path, private_images: dict[str, str], auth_registry: RegistryServer
) -> None:
    server_cm, _ = _private_cluster(tmp_path, private_images["basic"], auth_registry.host)
    with server_cm as server:
        server.forbidden.add("secrets")
        kubeconfig = server.kubeconfig(tmp_path / "kubeconfig")
        result = CliRunner().invoke(cli, ["audit", "--cluster", "--kubeconfig", str(kubeconfig), "--format", "json",
                                          "--cache-dir", str(tmp_path / "cache"), "--resolve-images",
                                          "--read-pull-secrets", "--insecure-registry", auth_registry.host])
        assert result.exit_code == 2
        report = json.loads(result.stdout)
        assert [e["message"] for e in report["errors"]] == [
            'get secret ml-dev/regcred: forbidden (403): secrets "regcred" is forbidden: User '
            '"system:serviceaccount:gpuguard:gpuguard" cannot get resource "secrets" in API group "" in the '
            'namespace "ml-dev"']
        assert _rules_of(report, "private-0") == {"GG108"}
        assert _rules_of(report, "jupyter-bob") == {"GG101"}  # the rest is still judged


def test_read_pull_secrets_needs_cluster_and_resolve_images() -> None:
    runner = CliRunner()
    alone = runner.invoke(cli, ["audit", "--read-pull-secrets", "-"], input="")
    assert alone.exit_code == 2 and "--read-pull-secrets needs --cluster" in alone.stderr
    no_resolve = runner.invoke(cli, ["audit", "--cluster", "--read-pull-secrets"])
    assert no_resolve.exit_code == 2 and "--read-pull-secrets needs --resolve-images" in no_resolve.stderr


def test_each_container_is_judged_on_the_digest_it_runs(tmp_path: Path, registry: RegistryServer) -> None:
    """A tag that moved since the pod started: the pod still runs the old image (``status...imageID``)."""
    host = registry.host
    before = push_image(registry.url, "acme/moving", "latest", env=ENV_ALL)  # what the running pods pulled
    push_image(registry.url, "acme/moving", "latest", env=ENV_VOID)  # the tag now names a void image
    image = f"{host}/acme/moving:latest"

    def running(name: str, image_id: str | None) -> dict[str, Any]:
        pod = _pod(name, "ml-dev", H100, [_c("main", image)])
        if image_id is not None:
            pod["status"]["containerStatuses"] = [{"name": "main", "image": image, "imageID": image_id,
                                                   "ready": True, "restartCount": 0, "started": True}]
        return pod

    snapshot = copy.deepcopy(realistic_cluster())
    snapshot.objects["pods"] += [
        running("started-before", f"{host}/acme/moving@{before}"),  # containerd / cri-o form
        running("docker-node", f"docker-pullable://{host}/acme/moving@{before}"),  # dockershim form
        running("not-started", None),  # no status yet: the tag as it is now
        running("local-build", "sha256:" + "ab" * 32),  # an image id without a registry digest: the tag
    ]
    with serve(snapshot, tmp_path) as server:
        report, _ = _audit(server, tmp_path, "--resolve-images", "--insecure-registry", host)
    assert _rules_of(report, "started-before") == {"GG101"}
    assert _rules_of(report, "docker-node") == {"GG101"}
    assert _rules_of(report, "not-started") == set()
    assert _rules_of(report, "local-build") == set()
