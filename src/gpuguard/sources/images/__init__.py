"""Image configs from OCI registries, local OCI layouts and archives, with an on-disk cache.

``resolver.resolve_images`` is the entry point. Modules, lowest first: ``reference``
(parsing), ``digests``, ``platforms``, ``manifests`` (untrusted JSON -> structures, platform
choice), ``credentials`` (docker config, helpers, pull secrets), ``auth`` (challenges, tokens),
``client`` (HTTP to one registry), ``cache``, ``local`` (layouts and archives), ``resolver``.
"""
