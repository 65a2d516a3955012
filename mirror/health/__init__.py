"""Health checks as registry:2's ``health`` section defines them (storage driver, file,
HTTP, TCP, each polled with a threshold), ``/debug/health``, and the Kubernetes probes
``/livez`` and ``/readyz`` with a drain switch.

Layer 3. See `mirror.health.checks`, `mirror.health.registry` and
`mirror.health.endpoints`.
"""
