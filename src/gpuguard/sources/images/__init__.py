"""Image configs from OCI registries, local OCI layouts and archives, with an on-disk cache."""
