"""The account's quotas, as Azure Batch enforces them on an account in Batch service mode:
its dedicated cores and its low-priority (spot) cores across all its pools, and its number
of pools ("Batch service quotas and limits").

A pool whose target needs more cores than the account has left gets the nodes that fit;
the resize then ends (``allocationState`` ``steady``) with a ``resizeErrors`` entry
(``AccountCoreQuotaReached``, ``AccountLowPriorityCoreQuotaReached``), and the pool stays
short until its next resize. A pool beyond the pool quota is refused (409
``PoolQuotaReached``). A node counts from its allocation until it has left the pool,
preempted or not.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Dict, Tuple

from .errors import BatchError

if TYPE_CHECKING:
    from .pool import Pool
    from .service import BatchService

#: A dedicated or low-priority quota reached: the resize error's code and message.
RESIZE_ERRORS: Dict[bool, Tuple[str, str]] = {
    True: ("AccountCoreQuotaReached", "The specified account has reached core quota"),
    False: ("AccountLowPriorityCoreQuotaReached",
            "The specified account has reached low priority core quota"),
}
_CORES = re.compile(r"^(?:standard|basic)_[a-z]+(\d+)", re.IGNORECASE)


def cores(vm_size: str) -> int:
    """A VM size's vCPUs, from its name (``Standard_D2a_v4``: 2, ``Standard_NC24ads_A100_v4``:
    24); 1 for a name without that number."""
    match = _CORES.match(vm_size or "")
    return max(1, int(match.group(1))) if match else 1


def quota(service: "BatchService", dedicated: bool) -> int:
    settings = service.settings
    return settings.dedicated_core_quota if dedicated else settings.low_priority_core_quota


def cores_in_use(service: "BatchService", dedicated: bool) -> int:
    return sum(cores(pool.spec.get("vmSize", "")) for pool in service.pools.values()
               for node in pool.nodes.values() if node.dedicated == dedicated)


def nodes_that_fit(pool: "Pool", dedicated: bool) -> int:
    """How many more nodes of the pool's size the account's quota has room for."""
    service = pool.service
    left = quota(service, dedicated) - cores_in_use(service, dedicated)
    return max(0, left // cores(pool.spec.get("vmSize", "")))


def check_pool_count(service: "BatchService") -> None:
    """Batch's 409 when the account has as many pools as its quota allows."""
    if len(service.pools) >= service.settings.pool_quota:
        raise BatchError("PoolQuotaReached")
