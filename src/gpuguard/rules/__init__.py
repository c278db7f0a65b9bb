"""Rules: each a small unit with a stable id that turns engine decisions into findings.

``RULES`` (in ``registry``) is the one registry; ``check_pod`` judges workloads
(GG1xx), ``check_node``/``check_toolkit_config`` node settings (GG2xx) and
``check_advisories`` known advisories (GG301).
"""

from gpuguard.rules.advisories import check_advisories
from gpuguard.rules.node import check_node, check_toolkit_config
from gpuguard.rules.registry import RULES, rule
from gpuguard.rules.settings import AuditSettings, load_settings
from gpuguard.rules.workload import check_pod

__all__ = [
    "RULES",
    "AuditSettings",
    "check_advisories",
    "check_node",
    "check_pod",
    "check_toolkit_config",
    "load_settings",
    "rule",
]
