"""The ``gpuguard simulate`` question: a toolkit and one container's OCI spec.

The document shape is a public contract (scripts depend on it)::

    toolkit:
      version: "1.17.8"            # optional, default: newest modelled
      config: "<config.toml text>" # optional, default: that version's shipped defaults
      platform: {tegra: false, nvml: true}
    container: <OCI runtime spec, or the part of it that matters>
    component: runtime             # or "hook"

Every rejection names the field (``toolkit.platform.nvml``), so a user can
find the mistake in a large batch without a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from gpuguard.engine.toolkit.config import config_from_toml, default_config
from gpuguard.engine.toolkit.versions import NEWEST, parse_toolkit_version
from gpuguard.model.container import ContainerSpec, Mount
from gpuguard.model.errors import InputError, type_name
from gpuguard.model.toolkit import Driver, Platform, Toolkit
from gpuguard.model.version import Version
from gpuguard.sources.toml_text import parse_toml

COMPONENTS = ("runtime", "hook")
_TOP_KEYS = frozenset({"toolkit", "container", "component"})
_TOOLKIT_KEYS = frozenset({"version", "config", "platform"})
_PLATFORM_FLAGS = {"nvml": "nvml", "tegra": "tegra", "wsl": "wsl",
                   "integrated_gpu": "integrated_gpu", "integratedGpu": "integrated_gpu"}
_DRIVER_KEYS = ("version", "cuda", "brand", "arch")


@dataclass(frozen=True, slots=True)
class Question:
    """What would this container get from this toolkit?"""

    toolkit: Toolkit
    container: ContainerSpec
    component: str = "runtime"


def read_question(doc: object) -> Question:
    """Turn a parsed simulate document into a ``Question``; raise ``InputError`` naming the field."""
    top = _mapping(doc, "", "a mapping with `container` (and optionally `toolkit`, `component`)")
    _no_unknown_keys(top, _TOP_KEYS, "")
    component = top.get("component", "runtime")
    if component not in COMPONENTS:
        raise InputError("component", f"expected one of {', '.join(COMPONENTS)}, got {component!r}")
    if "container" not in top:
        raise InputError("container", "required: the container's OCI spec (process.env, mounts, annotations)")
    return Question(read_toolkit(top.get("toolkit")), read_container(top["container"]), str(component))


def read_toolkit(section: object, where: str = "toolkit") -> Toolkit:
    """The ``toolkit`` section; identical sections share one parsed ``Toolkit``."""
    if section is None:
        return _toolkit(None, None, ())
    body = _mapping(section, where, "a mapping with version, config, platform")
    _no_unknown_keys(body, _TOOLKIT_KEYS, where)
    version = body.get("version")
    if version is not None and not isinstance(version, str):
        raise InputError(
            f"{where}.version", f"expected a string such as \"1.17.8\" (quote it), got {type_name(version)}"
        )
    config = body.get("config")
    if config is not None and not isinstance(config, str):
        raise InputError(f"{where}.config", f"expected config.toml text (a string), got {type_name(config)}")
    return _toolkit(version, config, _platform_key(body.get("platform"), f"{where}.platform"))


@lru_cache(maxsize=256)
def _toolkit(
    version_text: str | None, config_text: str | None, platform: tuple[tuple[str, object], ...]
) -> Toolkit:
    version = NEWEST if version_text is None else _version(version_text)
    if config_text is None:
        config = default_config(version)
    else:
        doc = parse_toml(config_text, "toolkit.config")
        config = config_from_toml(doc, version)
    found = dict(platform)
    driver = dict(found.pop("driver", ()))  # type: ignore[call-overload]
    return Toolkit(
        version=version,
        config=config,
        platform=Platform(
            nvml=bool(found.get("nvml", True)),
            tegra=bool(found.get("tegra", False)),
            wsl=bool(found.get("wsl", False)),
            integrated_gpu=bool(found.get("integrated_gpu", False)),
            driver=Driver(**driver),
        ),
    )


def _version(text: str) -> Version:
    try:
        return parse_toolkit_version(text)
    except InputError as exc:
        raise InputError("toolkit.version", exc.message) from None


def _platform_key(section: object, where: str) -> tuple[tuple[str, object], ...]:
    """A hashable, validated form of the platform section."""
    if section is None:
        return ()
    body = _mapping(section, where, "a mapping such as {tegra: false, nvml: true}")
    items: list[tuple[str, object]] = []
    for key, value in body.items():
        if key == "driver":
            driver = _mapping(value, f"{where}.driver", "a mapping with version, cuda, brand, arch")
            _no_unknown_keys(driver, frozenset(_DRIVER_KEYS), f"{where}.driver")
            for dkey, dvalue in driver.items():
                if dvalue is not None and not isinstance(dvalue, str):
                    raise InputError(f"{where}.driver.{dkey}", f"expected a string, got {type_name(dvalue)}")
            items.append(("driver", tuple(sorted(driver.items()))))
            continue
        field = _PLATFORM_FLAGS.get(key)
        if field is None:
            expected = ", ".join([*sorted(_PLATFORM_FLAGS), "driver"])
            raise InputError(f"{where}.{key}", f"unknown field (expected {expected})")
        if not isinstance(value, bool):
            raise InputError(f"{where}.{key}", f"expected true or false, got {type_name(value)}")
        items.append((field, value))
    return tuple(sorted(items))


def read_container(section: object, where: str = "container") -> ContainerSpec:
    """The parts of an OCI runtime spec the toolkit reads; other OCI fields are ignored."""
    spec = _mapping(section, where, "an OCI runtime spec (a mapping with process, mounts, annotations)")
    process = spec.get("process")
    env: tuple[str, ...] = ()
    bounding: frozenset[str] = frozenset()
    if process is not None:
        proc = _mapping(process, f"{where}.process", "a mapping with env and capabilities")
        env = _strings(proc.get("env"), f"{where}.process.env")
        bounding = _bounding(proc.get("capabilities"), f"{where}.process.capabilities")
    return ContainerSpec(
        env=env,
        bounding=bounding,
        mounts=_mounts(spec.get("mounts"), f"{where}.mounts"),
        annotations=_annotations(spec.get("annotations"), f"{where}.annotations"),
    )


def _bounding(value: object, where: str) -> frozenset[str]:
    """The bounding set; OCI 1.0.0-rc1..rc4 wrote capabilities as one flat list."""
    if value is None:
        return frozenset()
    if isinstance(value, list):
        return frozenset(_strings(value, where))
    caps = _mapping(value, where, "a mapping with bounding, effective, ... (or a list)")
    return frozenset(_strings(caps.get("bounding"), f"{where}.bounding"))


def _mounts(value: object, where: str) -> tuple[Mount, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InputError(where, f"expected a list of mounts, got {type_name(value)}")
    mounts = []
    for i, item in enumerate(value):
        mount = _mapping(item, f"{where}[{i}]", "a mapping with source and destination")
        source = mount.get("source", "")
        destination = mount.get("destination")
        if not isinstance(source, str):
            raise InputError(f"{where}[{i}].source", f"expected a string, got {type_name(source)}")
        if not isinstance(destination, str):
            raise InputError(f"{where}[{i}].destination", f"expected a string, got {type_name(destination)}")
        mounts.append(Mount(source, destination))
    return tuple(mounts)


def _annotations(value: object, where: str) -> Mapping[str, str]:
    if value is None:
        return {}
    body = _mapping(value, where, "a mapping of strings")
    for key, item in body.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise InputError(f"{where}.{key}", f"expected a string value, got {type_name(item)}")
    return {str(k): str(v) for k, v in body.items()}


def _strings(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InputError(where, f"expected a list of strings, got {type_name(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise InputError(f"{where}[{i}]", f"expected a string, got {type_name(item)}")
    return tuple(value)


def _mapping(value: object, where: str, expected: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise InputError(where, f"expected {expected}, got {type_name(value)}")
    for key in value:
        if not isinstance(key, str):
            raise InputError(where, f"keys must be strings, got {type_name(key)} {key!r}")
    return value


def _no_unknown_keys(body: Mapping[str, object], known: frozenset[str], where: str) -> None:
    for key in body:
        if key not in known:
            path = f"{where}.{key}" if where else key
            raise InputError(path, f"unknown field (expected {', '.join(sorted(known))})")
