"""Policy exports: the admission rules as Kyverno, Gatekeeper (Rego) and Kubernetes admission policies (CEL)."""
