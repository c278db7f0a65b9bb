"""The fix plan: findings + node profile + file text -> file edits, command blocks, manual items."""

from __future__ import annotations

import json

from gpuguard.fixes.operator import ProfileFacts
from gpuguard.fixes.plan import plan
from gpuguard.model.finding import Finding, Location, Resource, Severity
from gpuguard.model.version import v

DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: notebook
  namespace: research
spec:
  template:
    spec:
      containers:
      - name: lab  # notebook
        image: nvcr.io/nvidia/pytorch:24.05-py3
      - name: trainer
        image: nvcr.io/nvidia/pytorch:24.05-py3
        resources:
          limits:
            nvidia.com/gpu: 1
"""

CLUSTER_POLICY = """\
apiVersion: nvidia.com/v1
kind: ClusterPolicy
metadata:
  name: cluster-policy
spec:
  cdi:
    enabled: true
  toolkit:
    env:
    - name: CONTAINERD_CONFIG
      value: /var/lib/rancher/k3s/agent/etc/containerd/config.toml.tmpl
  devicePlugin:
    env:
    - name: DEVICE_LIST_STRATEGY
      value: volume-mounts
"""

VALUES = """\
operator:
  defaultRuntime: containerd
toolkit:
  env:
  - name: CONTAINERD_SOCKET
    value: /run/k3s/containerd/containerd.sock
"""

TOML = '[nvidia-ctk]\npath = "nvidia-ctk"\naccept-nvidia-visible-devices-envvar-when-unprivileged = false\n'

NOTEBOOK = Resource("apps/v1", "Deployment", "research", "notebook")
POLICY = Resource("nvidia.com/v1", "ClusterPolicy", None, "cluster-policy")


def finding(rule: str, resource: Resource | None, path: str, line: int = 1, container: str | None = None) -> Finding:
    return Finding(rule, Severity.HIGH, f"{rule} message", f"{rule} remedy", resource, container, Location(path, line))


def test_workload_findings_become_one_edit_per_file() -> None:
    found = [
        finding("GG101", NOTEBOOK, "deploy.yaml", 1, "lab"),
        finding("GG108", NOTEBOOK, "deploy.yaml", 1, "lab"),  # same container: edited once
        finding("GG102", NOTEBOOK, "deploy.yaml", 1, "trainer"),  # requests a GPU: left to a person
    ]
    result = plan(found, ProfileFacts(v("25.3.4")), {"deploy.yaml": DEPLOY})
    assert len(result.edits) == 1
    edit = result.edits[0]
    assert (
        edit.diff()
        == """\
--- a/deploy.yaml
+++ b/deploy.yaml
@@ -9,6 +9,9 @@
       containers:
       - name: lab  # notebook
         image: nvcr.io/nvidia/pytorch:24.05-py3
+        env:
+        - name: NVIDIA_VISIBLE_DEVICES
+          value: void
       - name: trainer
         image: nvcr.io/nvidia/pytorch:24.05-py3
         resources:
"""
    )
    assert edit.fixes == ("GG101|Deployment/research/notebook|lab", "GG108|Deployment/research/notebook|lab")
    assert [m.finding.rule_id for m in result.manual] == ["GG102"]
    assert result.kustomize[0][0] == "Deployment research/notebook"
    assert "- name: lab" in result.kustomize[0][1]


def test_clusterpolicy_in_a_file_gets_a_patch_for_its_release() -> None:
    found = [finding("GG201", POLICY, "gpu-operator.yaml"), finding("GG205", POLICY, "gpu-operator.yaml")]
    result = plan(found, ProfileFacts(v("24.9.2")), {"gpu-operator.yaml": CLUSTER_POLICY})
    titles = [c.title for c in result.commands]
    assert titles[0] == (
        "GG201, GG205: ClusterPolicy cluster-policy (gpu-operator.yaml): operator 24.9.2, recipe B (kubectl)"
    )
    patch = result.commands[0].commands[0]
    assert patch.startswith("kubectl patch clusterpolicies.nvidia.com/cluster-policy --type=json -p '[")
    body = json.loads(patch.split(" -p ", 1)[1].strip("'"))
    assert body == [
        {"op": "add", "path": "/spec/cdi/enabled", "value": False},
        {"op": "add", "path": "/spec/toolkit/env/-",
         "value": {"name": "ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED", "value": "false"}},
        {"op": "add", "path": "/spec/toolkit/env/-",
         "value": {"name": "ACCEPT_NVIDIA_VISIBLE_DEVICES_AS_VOLUME_MOUNTS", "value": "true"}},
    ]  # fmt: skip
    assert any("25.3.3" in n for n in result.commands[0].notes)
    assert "running pods" in titles[1]


def test_clusterpolicy_on_cdi_default_release_never_gets_volume_mounts() -> None:
    result = plan([finding("GG203", POLICY, "gpu-operator.yaml")], ProfileFacts(v("26.7.0")),
                  {"gpu-operator.yaml": CLUSTER_POLICY})  # fmt: skip
    text = result.render_text()
    assert "recipe D" in text
    assert "ACCEPT_NVIDIA_VISIBLE_DEVICES_AS_VOLUME_MOUNTS" not in text
    assert '{"op": "remove", "path": "/spec/devicePlugin/env/0"}' in text
    assert "runtimeClassName" in text


def test_values_file_gets_overlay_and_helm_args_with_chart_defaults_restated() -> None:
    result = plan([finding("GG202", None, "values.yaml")], ProfileFacts(v("25.3.2")), {"values.yaml": VALUES})
    block = result.commands[0]
    assert block.title == "GG202: values.yaml: operator 25.3.2, recipe A (Helm)"
    name, overlay = block.files[0]
    assert name == "gpuguard-overlay-values.yaml"
    assert overlay.startswith("""\
toolkit:
  env:
  - name: CONTAINERD_SOCKET
    value: "/run/k3s/containerd/containerd.sock"
  - name: ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED
    value: "false"
  - name: ACCEPT_NVIDIA_VISIBLE_DEVICES_AS_VOLUME_MOUNTS
    value: "true"
devicePlugin:
  env:
  - name: PASS_DEVICE_SPECS
    value: "true"
""")
    helm = block.commands[2]
    assert "--set-string 'toolkit.env[0].name=CONTAINERD_SOCKET'" in helm
    assert "--set-string 'toolkit.env[1].name=ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED'" in helm
    assert "--set-string 'devicePlugin.env[2].value=volume-mounts'" in helm


def test_profile_flag_only_reads_lists_first_and_appends() -> None:
    found = [finding("GG201", None, "--operator-version", 0)]
    result = plan(found, ProfileFacts(v("25.3.4"), cdi_enabled=False), {})
    block = result.commands[0]
    assert block.commands[0] == "helm get values gpu-operator -n gpu-operator --all -o yaml > gpu-operator-values.yaml"
    assert block.commands[1] == "gpuguard fix --operator-version 25.3.4 gpu-operator-values.yaml"
    assert '"path": "/spec/toolkit/env"' not in block.commands[-1]  # never (re)creates a list it has not read


def test_config_toml_edit_and_command() -> None:
    found = [finding("GG204", None, "/etc/nvidia-container-runtime/config.toml"),
             finding("GG201", None, "/etc/nvidia-container-runtime/config.toml")]  # fmt: skip
    result = plan(found, ProfileFacts(None), {"/etc/nvidia-container-runtime/config.toml": TOML})
    assert result.edits[0].after == (
        "accept-nvidia-visible-devices-envvar-when-unprivileged = false\n"
        "accept-nvidia-visible-devices-as-volume-mounts = true\n\n"
        '[nvidia-ctk]\npath = "nvidia-ctk"\n'
    )
    assert result.commands[0].commands == (
        "nvidia-ctk config --set accept-nvidia-visible-devices-envvar-when-unprivileged=false "
        "--set accept-nvidia-visible-devices-as-volume-mounts=true --in-place",
    )


def test_config_toml_in_cdi_mode_only_stops_accepting_the_env_var() -> None:
    text = '[nvidia-container-runtime]\nmode = "cdi"\n'
    result = plan([finding("GG201", None, "config.toml")], ProfileFacts(None), {"config.toml": text})
    assert result.edits[0].after == "accept-nvidia-visible-devices-envvar-when-unprivileged = false\n\n" + text


def test_dockerfiles_on_gpu_images_only() -> None:
    files = {"gpu/Dockerfile": "FROM nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04\nCMD x\n",
             "web/Dockerfile": "FROM nginx\n"}  # fmt: skip
    result = plan([], None, files, dockerfiles=list(files), is_gpu_image=lambda image: "nvidia" in image)
    assert [(e.path, e.after) for e in result.edits] == [
        ("gpu/Dockerfile", "FROM nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04\nENV NVIDIA_VISIBLE_DEVICES=void\nCMD x\n")
    ]


def test_missing_file_and_unknown_rule_are_manual_and_json_is_plain_data() -> None:
    found = [finding("GG101", NOTEBOOK, "gone.yaml", 1, "lab"), finding("GG301", None, "--operator-version", 0)]
    result = plan(found, None, {})
    assert [m.finding.rule_id for m in result.manual] == ["GG101", "GG301"]
    assert "not available" in result.manual[0].why
    data = json.loads(json.dumps(result.as_dict()))
    assert data["manual"][1] == {"rule_id": "GG301", "object": "(--operator-version)", "remediation": "GG301 remedy",
                                 "why": "no automatic remedy for this rule"}  # fmt: skip
    assert plan([], None, {}).render_text() == "nothing to fix\n"


def test_only_the_documents_with_findings_are_parsed_and_the_line_leads_to_them() -> None:
    stream = "".join(
        f"---\n# doc {i}\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}}}\nspec:\n  containers:\n  - name: c\n"
        for i in range(3)
    )
    broken = stream + "---\nkind: [unclosed\n"  # a document that does not parse is never touched
    pod = Resource("v1", "Pod", None, "p1")
    result = plan([finding("GG101", pod, "s.yaml", 9, "c")], None, {"s.yaml": broken})
    after = result.edits[0].after
    assert after == broken.replace(
        "metadata: {name: p1}\nspec:\n  containers:\n  - name: c\n",
        "metadata: {name: p1}\nspec:\n  containers:\n  - name: c\n    env:\n"
        "    - name: NVIDIA_VISIBLE_DEVICES\n      value: void\n",
    )
    # a line that points elsewhere falls back to searching the whole (parsable) file
    wrong = plan([finding("GG101", pod, "s.yaml", 1, "c")], None, {"s.yaml": stream})
    assert wrong.edits[0].after == after[: len(after) - len("---\nkind: [unclosed\n")]


HELM_OWNED_POLICY = """\
apiVersion: nvidia.com/v1
kind: ClusterPolicy
metadata:
  name: cluster-policy
  labels:
    app.kubernetes.io/managed-by: Helm
    helm.sh/chart: gpu-operator-v25.3.4
spec:
  cdi: {enabled: false}
  toolkit: {enabled: true}
  devicePlugin:
    env:
    - {name: DEVICE_LIST_STRATEGY, value: envvar}
"""

VALUES_24_9 = """\
operator:
  version: v24.9.2
cdi:
  enabled: true
toolkit:
  env:
  - {name: ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED, value: "false"}
  - {name: ACCEPT_NVIDIA_VISIBLE_DEVICES_AS_VOLUME_MOUNTS, value: "true"}
devicePlugin:
  env:
  - {name: DEVICE_LIST_STRATEGY, value: volume-mounts}
"""


def test_each_source_is_judged_by_its_own_release() -> None:
    # the report's profile says 26.7.0, but the values file is a 24.9.2 release with CDI on: recipe B
    found = [finding("GG205", None, "values.yaml")]
    result = plan(found, ProfileFacts(v("26.7.0")), {"values.yaml": VALUES_24_9})
    block = result.commands[0]
    assert block.title == "GG205: values.yaml: operator 24.9.2, recipe B (Helm)"
    overlay = block.files[0][1]
    assert overlay.startswith("cdi:\n  enabled: false\n")
    assert "toolkit:" not in overlay  # the env is already there: only CDI has to go
    assert "--set cdi.enabled=false" in block.commands[2]


def test_helm_owned_clusterpolicy_gets_the_helm_route_first() -> None:
    result = plan([finding("GG202", POLICY, "cp.yaml")], None, {"cp.yaml": HELM_OWNED_POLICY})
    assert [c.title for c in result.commands][:2] == [
        "GG202: ClusterPolicy cluster-policy (cp.yaml): operator 25.3.4, recipe A (Helm)",
        "GG202: ClusterPolicy cluster-policy (cp.yaml): operator 25.3.4, recipe A (kubectl)",
    ]
    assert any("Helm owns this ClusterPolicy" in n for n in result.commands[1].notes)


def test_source_already_hardened_leaves_the_findings_to_a_person() -> None:
    done = VALUES_24_9.replace("enabled: true", "enabled: false")
    result = plan([finding("GG206", None, "values.yaml")], None, {"values.yaml": done})
    assert result.commands == ()
    assert [m.finding.rule_id for m in result.manual] == ["GG206"]
    assert "already carries recipe A" in result.manual[0].why


def test_a_finding_on_a_gpu_container_is_skipped_not_claimed() -> None:
    found = [
        finding("GG108", NOTEBOOK, "deploy.yaml", 1, "trainer"),
        finding("GG101", NOTEBOOK, "deploy.yaml", 1, "lab"),
    ]
    result = plan(found, None, {"deploy.yaml": DEPLOY})
    assert result.edits[0].fixes == ("GG101|Deployment/research/notebook|lab",)
    assert result.skipped == (
        "deploy.yaml: Deployment research/notebook spec.template.spec.containers[1]: requests GPUs; "
        "void would take them away (fix its NVIDIA_VISIBLE_DEVICES by hand)",
    )
