"""batch-worker: the node-side runtime for Python batch work on Azure Batch."""

from __future__ import annotations

__version__ = "0.1.0"
