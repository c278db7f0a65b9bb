"""Where reports go besides stdout: PolicyReport objects in the cluster, Prometheus metrics, Kubernetes Events."""
