"""Policy exports: the admission rules as Kyverno, Gatekeeper (Rego), ValidatingAdmissionPolicy and MutatingAdmissionPolicy (CEL)."""
