"""The embedded default configuration: what `mirror serve` runs with no config file."""

from __future__ import annotations

from typing import Final

# The repository's config.yml (a test keeps the two equal).
DEFAULT_CONFIG_YAML: Final = """\
# mirror: a pull-through cache of Docker Hub (plus ghcr.io, quay.io and registry.k8s.io),
# that also takes pushes to repositories under local/.
#
# Keys mean what they mean in registry:2 (CNCF Distribution); every key can be overridden
# from the environment: REGISTRY_ + the upper-cased key path joined by _, for example
# REGISTRY_HTTP_ADDR=:6000 or REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=/data.
# `mirror check-config` prints the effective configuration.
version: 0.1

log:
  level: info                  # error | warn | info | debug
  accesslog:
    disabled: false

storage:
  filesystem:
    rootdirectory: ./data      # blobs, manifests and tags; metadata goes to ./data/_mirror
  delete:
    enabled: false
  maintenance:
    uploadpurging:             # drop upload sessions abandoned for longer than `age`
      enabled: true
      age: 168h
      interval: 24h
      dryrun: false

http:
  addr: :5000                  # every interface, port 5000
  headers:
    X-Content-Type-Options: [nosniff]
  server: granian              # granian | uvicorn
  workers: 1

proxy:
  # Plain requests (a Docker daemon's registry-mirrors) go to Docker Hub.
  remoteurl: https://registry-1.docker.io
  ttl: 168h                    # registry:2 retention; accepted, eviction not implemented yet
  freshness: 5m                # a tag is re-checked upstream (one HEAD) after this long
  local: [local/]              # local/... repositories live here only, push allowed
  negativettl: 30s
  breaker: {failures: 5, reset: 30s}
  timeouts: {connect: 5s, read: 30s}
  # Selected by containerd's ?ns=<host> or a <host>/ path prefix.
  upstreams:
    - name: ghcr.io
      remoteurl: https://ghcr.io
    - name: quay.io
      remoteurl: https://quay.io
    - name: registry.k8s.io
      remoteurl: https://registry.k8s.io
"""
