"""Image inspection in the webhook: ``gpuguard webhook`` as a subprocess resolving images from a real registry.

The registry is Debian's ``docker-registry`` on loopback (``tests/images/registry_harness``), spoken
to over plain HTTP (``images.insecureRegistries``); a :class:`FaultProxy` in front of it hangs to
show that a slow registry never holds an answer past ``timeoutSeconds`` and that ``failurePolicy``
decides. Skipped, with the reason, only when the ``docker-registry`` binary is absent.
"""

from __future__ import annotations

import base64
import concurrent.futures
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

from gpuguard.admission.config import load_admission_config
from gpuguard.admission.policy import Policy
from gpuguard.admission.review import Reviewer
from gpuguard.model.admission import AdmissionConfig
from gpuguard.model.errors import InputError
from gpuguard.webhook.app import State
from gpuguard.webhook.metrics import Metrics
from gpuguard.webhook.server import Options, Watcher, image_lookup, read_config
from tests.images.registry_harness import (
    FaultProxy,
    RegistryServer,
    docker_config,
    push_image,
    registry_binary,
    start_registry,
)
from tests.webhook.conftest import Webhook, start, stop

NVD = "NVIDIA_VISIBLE_DEVICES"
SKIP_REASON = (
    "docker-registry is not installed: the webhook's image tests need Debian's docker-registry package "
    "(./scripts/test installs it; apt-get install docker-registry)"
)
ENV_ALL = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", f"{NVD}=all",
           "NVIDIA_DRIVER_CAPABILITIES=compute,utility", "CUDA_VERSION=12.4.1")  # fmt: skip
ENV_PLAIN = ("PATH=/usr/bin:/bin", "APP_MODE=production")
GPU = {"limits": {"nvidia.com/gpu": "1"}}
SECRET = "s3cret-registry-password"  # in the registryAuth file: never in the webhook's log
HANG_SECONDS = 60.0  # the proxy holds requests this long, or until the test resets it
TIMEOUT = 4  # timeoutSeconds of the webhooks whose registry hangs (lookups get 2 s: the default margin)

needs_registry = pytest.mark.skipif(registry_binary() is None, reason=SKIP_REASON)


# --- fixtures: a registry with the images, a proxy that can hang, webhooks that inspect images -------------


@dataclass(frozen=True)
class Images:
    registry: str  # host:port of the registry
    proxy: str  # host:port of the fault proxy in front of it
    cuda: str  # a CUDA image (a GPU-family name) whose env sets NVIDIA_VISIBLE_DEVICES=all
    trainer: str  # an in-house image built FROM CUDA: sets all under a name no GPU family matches
    web: str  # sets nothing

    def via_proxy(self, ref: str) -> str:
        return ref.replace(self.registry, self.proxy, 1)


@pytest.fixture(scope="module")
def image_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    if registry_binary() is None:
        pytest.skip(SKIP_REASON)
    server = start_registry(tmp_path_factory.mktemp("registry"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxy(image_registry: RegistryServer) -> Iterator[FaultProxy]:
    fault_proxy = FaultProxy(image_registry.url)
    yield fault_proxy
    fault_proxy.stop()


@pytest.fixture
def hanging(proxy: FaultProxy) -> Iterator[FaultProxy]:
    """The proxy, holding every manifest request without an answer (released at the end of the test)."""
    proxy.reset()
    proxy.hang(r"^/v2/.+/manifests/", HANG_SECONDS, times=None)
    yield proxy
    proxy.reset()


@pytest.fixture(scope="module")
def images(image_registry: RegistryServer, proxy: FaultProxy) -> Images:
    url, host = image_registry.url, image_registry.host
    push_image(url, "nvidia/cuda", "12.4.1-base", env=ENV_ALL)
    push_image(url, "acme/trainer", "2024.1", env=ENV_ALL)
    push_image(url, "acme/web", "2.3", env=ENV_PLAIN)
    return Images(host, proxy.host, f"{host}/nvidia/cuda:12.4.1-base", f"{host}/acme/trainer:2024.1",
                  f"{host}/acme/web:2.3")  # fmt: skip


def image_config(images: Images, cache: Path, **settings: Any) -> str:
    """A webhook config that inspects images from the loopback registry and the proxy (plain HTTP)."""
    doc: dict[str, Any] = {"images": {"resolve": True, "insecureRegistries": [images.registry, images.proxy],
                                      "cacheDir": str(cache)}}  # fmt: skip
    doc.update(settings)
    return yaml.safe_dump(doc)


@pytest.fixture(scope="module")
def hook(tmp_path_factory: pytest.TempPathFactory, images: Images) -> Iterator[Webhook]:
    """Image inspection on, every other setting the default (modes, timeoutSeconds 10, failurePolicy Fail)."""
    tmp = tmp_path_factory.mktemp("webhook-images")
    auth = docker_config(tmp / "docker", {images.registry: ("alice", SECRET)})
    config = yaml.safe_load(image_config(images, tmp / "cache"))
    config["images"]["registryAuth"] = [str(auth)]
    server = start(tmp, yaml.safe_dump(config))
    yield server
    stop(server)


# --- helpers ------------------------------------------------------------------------------------------------


def review(obj: dict[str, Any], uid: str = "uid-1") -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "operation": "CREATE",
            "namespace": "team",
            "object": obj,
            "userInfo": {"username": "alice"},
        },
    }


def pod(*containers: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": list(containers)}}


def post(client: httpx.Client, path: str, doc: Any) -> dict[str, Any]:
    r = client.post(path, content=orjson.dumps(doc), headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    return r.json()["response"]  # type: ignore[no-any-return]


def patch_of(response: dict[str, Any]) -> list[dict[str, Any]]:
    if "patch" not in response:
        return []
    ops: list[dict[str, Any]] = orjson.loads(base64.b64decode(response["patch"]))
    return ops


def metric(client: httpx.Client, name: str, **labels: str) -> float:
    """One sample of /metrics (0 when absent)."""
    text = client.get("/metrics").text
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        m = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        if m and m.group(1) == name and ",".join(sorted((m.group(2) or "").split(","))) == wanted:
            return float(m.group(3))
    return 0.0


def cache_counts(client: httpx.Client) -> tuple[float, float, float]:
    return tuple(metric(client, "gpuguard_webhook_image_cache_total", result=r)  # type: ignore[return-value]
                 for r in ("hit", "miss", "timeout"))  # fmt: skip


# --- the configuration ------------------------------------------------------------------------------------


def test_images_section_and_the_shorthand() -> None:
    assert AdmissionConfig().resolve_images is False  # no network by default
    assert load_admission_config({"resolveImages": True}).resolve_images is True
    config = load_admission_config({
        "timeoutSeconds": 6,
        "images": {"resolve": True, "registryAuth": ["/etc/gpuguard/auth.json"], "insecureRegistries": ["r:5000"],
                   "caFile": "/etc/ssl/ca.pem", "cacheDir": "/var/cache/gpuguard", "platform": "linux/arm64"},
    })  # fmt: skip
    assert config.resolve_images and config.registry_auth == ("/etc/gpuguard/auth.json",)
    assert config.insecure_registries == ("r:5000",) and config.ca_file == "/etc/ssl/ca.pem"
    assert (config.image_cache_dir, config.image_platform) == ("/var/cache/gpuguard", "linux/arm64")
    assert config.lookup_timeout() == 4.0  # timeoutSeconds less a 2 s margin
    assert load_admission_config({}).lookup_timeout() == 8.0
    assert load_admission_config({"timeoutSeconds": 2}).lookup_timeout() == 1.0
    given = load_admission_config({"images": {"resolve": True, "lookupTimeoutSeconds": 2.5}})
    assert given.lookup_timeout() == 2.5
    assert load_admission_config({"images": {"registryAuth": ["a"]}}).resolve_images is False


@pytest.mark.parametrize(
    ("doc", "error"),
    [
        ({"images": []}, "images: expected a mapping"),
        ({"images": {"resolv": True}}, "images.resolv: unknown key"),
        ({"images": {"resolve": "yes"}}, "images.resolve: expected true or false"),
        ({"images": {"registryAuth": "auth.json"}}, "images.registryAuth: expected a list of strings"),
        ({"images": {"insecureRegistries": [""]}}, "images.insecureRegistries[0]: expected a non-empty string"),
        ({"images": {"caFile": 3}}, "images.caFile: expected a path"),
        ({"images": {"platform": "amd64"}}, "images.platform: expected os/arch[/variant]"),
        ({"images": {"lookupTimeoutSeconds": 0}}, "images.lookupTimeoutSeconds: expected a number"),
        ({"images": {"lookupTimeoutSeconds": 10}}, "images.lookupTimeoutSeconds: expected less than timeoutSeconds"),
        ({"resolveImages": True, "images": {"resolve": False}}, "resolveImages: contradicts images.resolve"),
    ],
)
def test_images_errors_name_the_field(doc: dict[str, Any], error: str) -> None:
    with pytest.raises(InputError) as exc:
        load_admission_config(doc)
    assert str(exc.value).startswith(error), str(exc.value)


def test_unreadable_files_are_refused_on_start(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"images": {"resolve": True, "registryAuth": [str(tmp_path / "missing.json")]}}))
    with pytest.raises(InputError, match=r"images\.registryAuth\[0\]: cannot read"):
        read_config(str(path))
    path.write_text(yaml.safe_dump({"images": {"resolve": False, "caFile": str(tmp_path / "missing.pem")}}))
    assert read_config(str(path)).ca_file is not None  # off: nothing is read


def test_reload_keeps_the_memory_cache_unless_image_settings_change(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    images = {"resolve": True, "cacheDir": str(tmp_path / "cache")}
    path.write_text(yaml.safe_dump({"images": images}))
    metrics = Metrics()
    config = read_config(str(path))
    state = State(Reviewer(Policy(config)), images=image_lookup(config, metrics))
    watcher = Watcher(Options(None, None, config=str(path)), state, None, metrics)
    first = state.images
    assert first is not None
    path.write_text(yaml.safe_dump({"images": images, "modes": {"GG104": "audit"}}))  # other settings only
    watcher.check()
    assert state.images is first and state.reviewer.policy.config.modes["GG104"] == "audit"
    path.write_text(yaml.safe_dump({"images": {**images, "platform": "linux/arm64"}}))
    watcher.check()
    assert state.images is not None and state.images is not first
    assert state.images.options.platform == "linux/arm64"
    path.write_text(yaml.safe_dump({"modes": {"GG104": "warn"}, "images": {"resolve": False}}))
    watcher.check()
    assert state.images is None  # off again: no lookups, no network
    assert image_lookup(AdmissionConfig(), metrics) is None


# --- the real server --------------------------------------------------------------------------------------


@needs_registry
def test_gpu_pod_whose_image_sets_all_is_allowed(hook: Webhook, images: Images) -> None:
    """The device plugin's list replaces the image's ``all``: nothing widens the allocation."""
    client = hook.client()
    _, misses, _ = cache_counts(client)
    response = post(client, "/validate", review(pod({"name": "train", "image": images.cuda, "resources": GPU})))
    assert response["allowed"] is True, response
    assert not response.get("warnings") and not response.get("auditAnnotations")
    assert cache_counts(client)[1] == misses + 1  # the image was looked up


@needs_registry
def test_image_that_cannot_be_read_is_gg108_per_its_mode_not_failure_policy(hook: Webhook, images: Images) -> None:
    """Not found is no timeout: the image stays unknown and GG108 warns (its default mode), even under Fail."""
    response = post(hook.client(), "/validate", review(pod({"name": "app", "image": f"{images.registry}/acme/gone:1"})))
    assert response["allowed"] is True, response
    assert any(w.startswith("[GG108] container 'app'") for w in response.get("warnings", ())), response


@needs_registry
def test_gpu_pod_whose_own_env_is_all_is_denied_gg102(hook: Webhook, images: Images) -> None:
    container = {"name": "train", "image": images.web, "resources": GPU, "env": [{"name": NVD, "value": "all"}]}
    response = post(hook.client(), "/validate", review(pod(container)))
    assert response["allowed"] is False and response["status"]["code"] == 403
    assert "[GG102]" in response["status"]["message"] and "train" in response["status"]["message"]


@needs_registry
def test_image_that_sets_all_without_gpu_request_is_patched_and_not_denied(hook: Webhook, images: Images) -> None:
    """GG101 is fixed by the mutation (its default mode is off in /validate): patched to void, never denied."""
    client = hook.client()
    obj = pod({"name": "app", "image": images.trainer})
    mutated = post(client, "/mutate", review(obj))
    assert mutated["allowed"] is True
    void = [{"name": NVD, "value": "void"}]
    assert patch_of(mutated) == [{"op": "add", "path": "/spec/containers/0/env", "value": void}]
    # as the API server sends it after the mutation, and as sent before it: GG101 is never denied by default
    patched = pod({"name": "app", "image": images.trainer, "env": [{"name": NVD, "value": "void"}]})
    for sent in (patched, obj):
        response = post(client, "/validate", review(sent))
        assert response["allowed"] is True, response
        assert "GG101" not in orjson.dumps(response).decode()


@needs_registry
def test_inspected_image_env_makes_gg101_definite(tmp_path: Path, images: Images) -> None:
    """With GG101 enforced, the image's ``all`` (a name no GPU family matches) is seen and denied; void fixes it."""
    server = start(tmp_path, image_config(images, tmp_path / "cache", modes={"GG101": "enforce"}))
    try:
        client = server.client()
        denied = post(client, "/validate", review(pod({"name": "app", "image": images.trainer})))
        assert denied["allowed"] is False and "[GG101]" in denied["status"]["message"]
        assert "image env" in denied["status"]["message"]
        fixed = pod({"name": "app", "image": images.trainer, "env": [{"name": NVD, "value": "void"}]})
        assert post(client, "/validate", review(fixed))["allowed"] is True
    finally:
        stop(server)


@needs_registry
def test_second_request_for_an_image_hits_the_memory_cache(hook: Webhook, images: Images) -> None:
    client = hook.client()
    image = f"{images.registry}/acme/cached:1.0"  # looked up by no other test
    push_image(f"http://{images.registry}", "acme/cached", "1.0", env=ENV_PLAIN)
    obj = pod({"name": "web", "image": image, "resources": GPU})
    _, misses, _ = cache_counts(client)
    assert post(client, "/validate", review(obj, uid="first"))["allowed"] is True
    hits_1, misses_1, _ = cache_counts(client)
    assert misses_1 >= misses + 1
    assert post(client, "/validate", review(obj, uid="second"))["allowed"] is True
    hits_2, misses_2, _ = cache_counts(client)
    assert hits_2 == hits_1 + 1 and misses_2 == misses_1  # answered from memory: no lookup at all
    assert SECRET not in hook.stderr() and base64.b64encode(f"alice:{SECRET}".encode()).decode() not in hook.stderr()


@needs_registry
@pytest.mark.parametrize("failure_policy", ["Fail", "Ignore"])
def test_hanging_registry_answers_within_the_timeout_per_failure_policy(
    tmp_path: Path, images: Images, hanging: FaultProxy, failure_policy: str
) -> None:
    server = start(tmp_path, image_config(images, tmp_path / "cache", timeoutSeconds=TIMEOUT,
                                          failurePolicy=failure_policy))  # fmt: skip
    try:
        client = server.client()
        slow = images.via_proxy(images.cuda)
        obj = pod({"name": "app", "image": slow})  # no GPU request, no env of its own: the image decides
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            started = time.monotonic()
            pending = pool.submit(post, server.client(), "/validate", review(obj, uid="slow"))
            # no request blocks another: while that lookup hangs, another review is answered at once
            server.wait_for(lambda: any(r.fault == "hang" for r in hanging.log), "the registry to hold the lookup")
            other_started = time.monotonic()
            other = post(client, "/validate", review(pod({"name": "web", "image": images.web, "resources": GPU}),
                                                     uid="other"))  # fmt: skip
            assert other["allowed"] is True
            assert time.monotonic() - other_started < TIMEOUT / 2, "a hanging lookup held up another review"
            response = pending.result(timeout=TIMEOUT + 5)
            elapsed = time.monotonic() - started
        assert elapsed < TIMEOUT, f"answered after {elapsed:.2f}s, over timeoutSeconds {TIMEOUT}"
        assert response["uid"] == "slow"
        if failure_policy == "Fail":
            assert response["allowed"] is False and response["status"]["code"] == 504
            assert "image lookup timed out" in response["status"]["message"]
            assert slow in response["status"]["message"] and "failurePolicy Fail" in response["status"]["message"]
        else:
            assert response["allowed"] is True
            warnings = " ".join(response.get("warnings", ()))
            assert "image lookup timed out" in warnings and "failurePolicy Ignore" in warnings
            assert "GG108" in warnings  # the image stays unknown: GG108 per its mode (warn)
        assert cache_counts(client)[2] >= 1  # /metrics counts the timeout
        # the mutation never waits for images: the same pod is patched at once
        mutate_started = time.monotonic()
        assert patch_of(post(client, "/mutate", review(obj)))
        assert time.monotonic() - mutate_started < TIMEOUT / 2
    finally:
        hanging.reset()
        stop(server)
