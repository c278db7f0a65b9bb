"""Registry credentials from docker config files, ``--registry-auth`` files and imagePullSecrets.

Sources are asked in this order, first match wins: ``--registry-auth`` files, then
imagePullSecrets, then the docker config (``$DOCKER_CONFIG/config.json`` or
``~/.docker/config.json``). Within one docker config: ``credHelpers[host]``, then
``credsStore``, then ``auths``, as the docker CLI does.

``auths`` keys are matched as kubelet matches pull-secret keys: scheme and a ``/v1/``
or ``/v2/`` suffix are ignored, a key with a path (``host/team``) covers repositories under
it, ``*.example.com`` covers one label, the most specific key wins; Docker Hub answers to
``https://index.docker.io/v1/``, ``index.docker.io``, ``docker.io`` and ``registry-1.docker.io``.

Secrets live only in :class:`Credential` objects, whose ``repr`` shows none of them; no
message built here contains a secret, a base64 ``auth`` value or a helper's output.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
import logging
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gpuguard.model.errors import InputError
from gpuguard.sources.images.reference import DOCKER_HUB, DOCKER_HUB_ALIASES

__all__ = ["Credential", "CredentialStore", "DockerConfig", "default_docker_config_dir", "helper_server"]

log = logging.getLogger("gpuguard.images")
HUB_SERVER = "https://index.docker.io/v1/"
_HELPER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_MAX_CONFIG = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Credential:
    """Username/password, an identity (refresh) token, or a registry bearer token."""

    username: str = field(default="", repr=False)
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)
    registry_token: str = field(default="", repr=False)
    source: str = ""  # where it came from, for messages: "docker config /home/u/.docker/config.json"

    def __repr__(self) -> str:
        return f"Credential(source={self.source!r}, secrets hidden)"

    __str__ = __repr__

    @property
    def basic(self) -> tuple[str, str] | None:
        """(username, password) for Basic auth, when there are any."""
        return (self.username, self.password) if self.username or self.password else None


def default_docker_config_dir() -> str:
    """``$DOCKER_CONFIG``, else ``~/.docker``."""
    return os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")


def _host_alias(host: str) -> str:
    host = host.lower()
    return DOCKER_HUB if host in DOCKER_HUB_ALIASES else host


def _split_key(key: str) -> tuple[str, str]:
    """``https://host:5000/v2/team/`` -> ``("host:5000", "team")``."""
    text = key.strip()
    for scheme in ("https://", "http://"):
        if text.lower().startswith(scheme):
            text = text[len(scheme) :]
    host, _, path = text.partition("/")
    path = path.strip("/")
    if path in ("v1", "v2"):
        path = ""
    elif path.startswith(("v1/", "v2/")):
        path = path[3:]
    return _host_alias(host), path


def _host_matches(pattern: str, host: str) -> bool:
    """Kubelet's glob: label by label, the same number of labels, ports equal."""
    p_host, _, p_port = pattern.partition(":")
    h_host, _, h_port = host.partition(":")
    if p_port != h_port:
        return False
    p_labels, h_labels = p_host.split("."), h_host.split(".")
    return len(p_labels) == len(h_labels) and all(
        fnmatch.fnmatchcase(h, p) for p, h in zip(p_labels, h_labels, strict=True)
    )


def helper_server(registry: str) -> str:
    """What a credential helper is asked for: Docker Hub's legacy URL, else the host."""
    return HUB_SERVER if registry == DOCKER_HUB else registry


def _credential_from_entry(entry: Any, source: str) -> Credential | None:
    if not isinstance(entry, Mapping):
        return None
    username = entry.get("username") or ""
    password = entry.get("password") or ""
    auth = entry.get("auth")
    if isinstance(auth, str) and auth:
        try:
            decoded = base64.b64decode(auth.strip(), validate=False).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            log.debug("ignoring an undecodable auth entry in %s", source)
            decoded = ""
        if ":" in decoded:
            username, password = decoded.split(":", 1)
    identity = entry.get("identitytoken") or ""
    registry_token = entry.get("registrytoken") or ""
    values = (username, password, identity, registry_token)
    if not all(isinstance(v, str) for v in values) or not any(values):
        return None
    return Credential(str(username), str(password), str(identity), str(registry_token), source)


def run_helper(name: str, server: str, timeout: float, source: str) -> Credential | None:
    """``docker-credential-<name> get`` with ``server`` on stdin; None when it has nothing."""
    if not _HELPER_NAME.match(name):
        return None
    program = shutil.which(f"docker-credential-{name}")
    if program is None:
        log.debug("credential helper docker-credential-%s not found on PATH", name)
        return None
    try:
        done = subprocess.run(  # a fixed argv, no shell
            [program, "get"], input=server.encode(), capture_output=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.SubprocessError):
        log.debug("credential helper docker-credential-%s failed or timed out", name)
        return None
    if done.returncode != 0:
        log.debug("credential helper docker-credential-%s has no credentials for %s", name, server)
        return None
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        log.debug("credential helper docker-credential-%s answered something other than JSON", name)
        return None
    if not isinstance(answer, Mapping):
        return None
    username, secret = answer.get("Username") or "", answer.get("Secret") or ""
    if not isinstance(username, str) or not isinstance(secret, str) or not secret:
        return None
    where = f"{source} (credential helper {name})"
    if username == "<token>":
        return Credential(identity_token=secret, source=where)
    return Credential(username=username, password=secret, source=where)


@dataclass
class DockerConfig:
    """One docker config document: ``auths``, ``credHelpers``, ``credsStore``."""

    source: str
    auths: list[tuple[str, str, Any]] = field(default_factory=list)  # (host pattern, path, entry)
    helpers: dict[str, str] = field(default_factory=dict)  # host -> helper name
    store: str | None = None
    _helper_answers: dict[tuple[str, str], Credential | None] = field(default_factory=dict, repr=False)

    @classmethod
    def from_document(cls, doc: Any, source: str) -> DockerConfig:
        """A parsed config.json or .dockerconfigjson; the legacy .dockercfg map works too."""
        config = cls(source)
        if not isinstance(doc, Mapping):
            return config
        auths = doc.get("auths")
        if not isinstance(auths, Mapping):
            # legacy ~/.dockercfg / kubernetes.io/dockercfg: the auths map itself
            auths = {k: v for k, v in doc.items() if isinstance(v, Mapping)} if "auths" not in doc else {}
        for key, entry in auths.items():
            if isinstance(key, str) and key.strip():
                host, path = _split_key(key)
                config.auths.append((host, path, entry))
        helpers = doc.get("credHelpers")
        if isinstance(helpers, Mapping):
            for key, name in helpers.items():
                if isinstance(key, str) and isinstance(name, str):
                    config.helpers[_split_key(key)[0]] = name
        store = doc.get("credsStore")
        config.store = store if isinstance(store, str) and store else None
        return config

    @classmethod
    def from_file(cls, path: str, *, required: bool) -> DockerConfig | None:
        """Read a file; a missing or broken optional file is None, a required one an InputError."""
        try:
            with open(path, "rb") as f:
                data = f.read(_MAX_CONFIG + 1)
            if len(data) > _MAX_CONFIG:
                raise ValueError("file too large")
            doc = json.loads(data)
        except FileNotFoundError:
            if required:
                raise InputError(path, "registry auth file not found") from None
            return None
        except (OSError, ValueError) as exc:
            if required:
                reason = exc.strerror if isinstance(exc, OSError) else "not a docker config JSON file"
                raise InputError(path, f"cannot read registry auth file: {reason}") from None
            log.debug("ignoring unreadable docker config %s", path)
            return None
        if required and not isinstance(doc, Mapping):
            raise InputError(path, "registry auth file is not a JSON object")
        return cls.from_document(doc, path)

    def _match_auths(self, registry: str, repository: str) -> Credential | None:
        best: tuple[int, int, int] | None = None
        found = None
        for order, (host, path, entry) in enumerate(self.auths):
            if not _host_matches(host, registry):
                continue
            if path and repository != path and not repository.startswith(path + "/"):
                continue
            key = (0 if "*" in host else 1, len(path), -order)
            if best is None or key > best:
                credential = _credential_from_entry(entry, self.source)
                if credential is not None:
                    best, found = key, credential
        return found

    def lookup(self, registry: str, repository: str, timeout: float) -> Credential | None:
        """The credential for ``registry`` (normalised host) and ``repository``, if any."""
        helper = self.helpers.get(registry)
        if helper is not None:
            return self._ask(helper, registry, timeout)
        if self.store is not None:
            credential = self._ask(self.store, registry, timeout)
            if credential is not None:
                return credential
        return self._match_auths(registry, repository)

    def _ask(self, helper: str, registry: str, timeout: float) -> Credential | None:
        """One helper call per registry (callers hold the store's lock)."""
        key = (helper, registry)
        if key not in self._helper_answers:
            self._helper_answers[key] = run_helper(helper, helper_server(registry), timeout, self.source)
        return self._helper_answers[key]


class CredentialStore:
    """Every credential source, asked in order; helper answers memoised per registry."""

    def __init__(
        self,
        auth_files: tuple[str, ...] = (),
        pull_secrets: tuple[Mapping[str, Any], ...] = (),
        docker_config: str | None = None,
        helper_timeout: float = 10.0,
    ) -> None:
        self.helper_timeout = helper_timeout
        self.configs: list[DockerConfig] = []
        for path in auth_files:
            config = DockerConfig.from_file(path, required=True)
            if config is not None:
                self.configs.append(config)
        for i, doc in enumerate(pull_secrets):
            self.configs.append(DockerConfig.from_document(doc, f"imagePullSecret #{i + 1}"))
        directory = docker_config if docker_config is not None else default_docker_config_dir()
        default = DockerConfig.from_file(os.path.join(directory, "config.json"), required=False)
        if default is not None:
            self.configs.append(default)
        self._memo: dict[tuple[str, str], Credential | None] = {}
        self._lock = threading.Lock()

    def lookup(self, registry: str, repository: str) -> Credential | None:
        """The credential to present to ``registry`` for ``repository``, or None (anonymous)."""
        registry = _host_alias(registry)
        key = (registry, repository)
        with self._lock:
            if key in self._memo:
                return self._memo[key]
            found = None
            for config in self.configs:
                found = config.lookup(registry, repository, self.helper_timeout)
                if found is not None:
                    break
            self._memo[key] = found
            return found
