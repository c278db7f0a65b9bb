"""The table is the webhook's too: each case's verdict from ``gpuguard.admission.review``, so an export that
agrees with the table agrees with the webhook."""

from __future__ import annotations

import pytest

from gpuguard.admission.review import iter_rules, review
from tests.admission.cases import CASES, Case, admission_request


def webhook_verdict(case: Case) -> object:
    response = review(admission_request(case))
    rules = sorted(set(iter_rules(response)))
    if not response.allowed:
        return ("deny", *rules)
    if response.warnings:
        return ("warn", *rules)
    return "patch" if response.patch else "allow"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_webhook_gives_the_table_verdict(case: Case) -> None:
    assert webhook_verdict(case) == case.expected
