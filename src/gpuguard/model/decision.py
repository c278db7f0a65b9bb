"""What the engine decides for one container, and why.

A decision is one of: not a GPU container (``devices is None``), a GPU
container with no device nodes (``devices == ("",)``, the toolkit's "none"),
all GPUs (``("all",)``), a list of device ids, or a container that fails to
start (``error``). When an input the decision depends on is unknown,
``unknown`` says which and why: the third state, never read as safe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Exposure(StrEnum):
    """How much GPU access a decision grants, for rules and summaries."""

    NONE = "none"  # not a GPU container
    LIBRARIES = "libraries"  # driver libraries, no device nodes
    DEVICES = "devices"  # the listed devices
    ALL = "all"  # every GPU on the node
    FAILS = "fails"  # the container does not start
    UNKNOWN = "unknown"  # depends on an input we do not know


@dataclass(frozen=True, slots=True)
class Step:
    """One rule that fired: its id, the input it read, and what it concluded."""

    rule: str
    read: str
    says: str

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "read": self.read, "says": self.says}


@dataclass(frozen=True, slots=True)
class Decision:
    """The toolkit's answer for one container on one node."""

    devices: tuple[str, ...] | None
    mode: str
    cdi_devices: tuple[str, ...] | None = None
    error: str | None = None
    imex_channels: tuple[str, ...] | None = None
    unknown: tuple[str, ...] | None = None
    # Unknown inputs that can change only ``imex_channels``, never which GPUs are seen.
    imex_unknown: tuple[str, ...] | None = None
    trail: tuple[Step, ...] = field(default=())

    @property
    def exposure(self) -> Exposure:
        if self.error is not None:
            return Exposure.FAILS
        if self.unknown:
            return Exposure.UNKNOWN
        devices = self.devices
        if devices is None:
            return Exposure.NONE
        if "all" in devices or any(d.endswith("=all") for d in self.cdi_devices or ()):
            return Exposure.ALL
        # In legacy mode nvidia-container-cli reads the ids and matches "all" case-insensitively.
        if self.mode == "legacy" and any(d.lower() == "all" for d in devices):
            return Exposure.ALL
        if all(d in ("", "none") for d in devices):
            return Exposure.LIBRARIES
        return Exposure.DEVICES

    @property
    def devices_json(self) -> str | list[str] | None:
        """``devices`` in the simulate contract: null, "all", "none" or a list."""
        devices = self.devices
        if devices is None:
            return None
        if devices == ("all",):
            return "all"
        if devices == ("",):
            return "none"
        return list(devices)


@dataclass(frozen=True, slots=True)
class ContainerDecision:
    """What one container of a pod gets on one node, end to end.

    ``toolkit`` is the toolkit's decision when the NVIDIA runtime (or its hook)
    handles the container, else None. ``injected`` lists CDI devices that the
    CRI runtime or the NRI plugin adds on its own. ``sees`` is the overall
    answer: ``("all",)`` for every GPU, the GPU ids otherwise, ``()`` for none;
    it is None with ``exposure`` UNKNOWN or FAILS.
    """

    pod: str
    namespace: str
    container: str
    kind: str  # "container" | "initContainer" | "ephemeralContainer"
    requested: int  # nvidia.com/gpu (and other nvidia.com/* devices) requested
    allocated: tuple[str, ...]  # device ids the device plugin allocated
    handler: str | None  # runtime handler that creates the container
    toolkit: Decision | None
    injected: tuple[str, ...]
    host_devices: bool  # privileged: every host device node, whatever the toolkit does
    sees: tuple[str, ...] | None
    exposure: Exposure
    error: str | None = None
    unknown: tuple[str, ...] | None = None
    trail: tuple[Step, ...] = field(default=())

    @property
    def overreach(self) -> bool:
        """Sees GPUs beyond its allocation (or any GPU without a request)."""
        if self.sees is None:
            return False
        if "all" in self.sees:
            return True
        return any(gpu not in self.allocated for gpu in self.sees)
