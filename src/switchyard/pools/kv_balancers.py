"""Importing this module registers the KV-cache-aware balancers in `BALANCERS`."""

from __future__ import annotations

from switchyard.pools import (  # noqa: F401  (imported for their registrations)
    consistent_hash,
    dualmap,
    least_pending_tokens,
    prefix_affinity,
    session_affinity,
)
