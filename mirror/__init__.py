"""mirror: a pull-through caching container registry (OCI Distribution / Docker Registry V2)."""

from __future__ import annotations

__version__ = "0.1.0"
