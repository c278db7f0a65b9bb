"""The shared admission table (tests/admission/cases.py) through the webhook: in process and over TLS.

Each case runs as the API server would: /mutate first, its patch applied, then
/validate on the mutated pod. "patch" means allowed with a patch; "allow"
allowed untouched; ("deny", rule) denied naming the rule; ("warn", rule)
allowed with a warning naming it.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

import orjson
import pytest

from gpuguard.admission.mutate import with_patch
from gpuguard.admission.policy import Policy
from gpuguard.admission.review import Reviewer
from gpuguard.model.admission import AdmissionConfig
from tests.admission.cases import CASES, Case, admission_request, admission_review
from tests.webhook.conftest import Webhook

REVIEWER = Reviewer(Policy(AdmissionConfig()))
IDS = [case.name for case in CASES]


def check(case: Case, patch: list[dict[str, Any]], validate: dict[str, Any]) -> None:
    """``validate`` is the AdmissionReview response of /validate for the mutated pod."""
    expected = case.expected
    allowed = validate["allowed"]
    warnings = validate.get("warnings") or []
    message = (validate.get("status") or {}).get("message", "")
    if expected == "patch":
        assert patch, "expected a patch"
        assert allowed and not warnings, (message, warnings)
    elif expected == "allow":
        assert not patch, patch
        assert allowed and not warnings, (message, warnings)
    else:
        verdict, rule = expected
        if verdict == "deny":
            assert not allowed and f"[{rule}]" in message, message
            assert "Fix:" in message
        else:
            assert verdict == "warn"
            assert allowed, message
            assert any(w.startswith(f"[{rule}]") for w in warnings), warnings


def _ops(response: dict[str, Any]) -> list[dict[str, Any]]:
    return orjson.loads(base64.b64decode(response["patch"])) if "patch" in response else []


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_case_in_process(case: Case) -> None:
    request = admission_request(case)
    mutated = REVIEWER.review(request, validate=False)
    assert mutated.allowed
    obj = with_patch(request["object"], mutated.patch)
    validated = REVIEWER.review({**request, "object": obj}, mutate=False)
    check(case, list(mutated.patch), validated.to_review()["response"])
    # idempotent: the mutated pod needs no second patch
    assert REVIEWER.review({**request, "object": obj}, validate=False).patch == ()
    # dry run: the same verdict
    dry = REVIEWER.review({**request, "object": obj, "dryRun": True}, mutate=False)
    assert (dry.allowed, dry.decisions) == (validated.allowed, validated.decisions)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_case_over_tls(shared_webhook: Webhook, case: Case) -> None:
    client = shared_webhook.client()
    body = admission_review(case, uid=f"tls-{case.name}")
    r = client.post("/mutate", content=orjson.dumps(body))
    assert r.status_code == 200, r.text
    mutated = r.json()["response"]
    assert mutated["uid"] == f"tls-{case.name}" and mutated["allowed"]
    ops = _ops(mutated)
    validate_body = copy.deepcopy(body)
    validate_body["request"]["object"] = with_patch(body["request"]["object"], tuple(ops))
    r = client.post("/validate", content=orjson.dumps(validate_body))
    assert r.status_code == 200, r.text
    check(case, ops, r.json()["response"])
