"""The target refused documents for a reason of the cluster's, not of the documents'.

Both copy modes stop the same way then: nothing is dead-lettered (the documents are fine), the
copy stops at its last checkpoint, and the error says what the cluster said and what lifts it.
A write block on the target (the flood-stage disk watermark sets ``read_only_allow_delete``)
stops the copy at once: retrying cannot outlast it, only freeing disk space can.
"""

from __future__ import annotations

from typing import Any

from esmigrate.cluster import Cluster
from esmigrate.exceptions import RequestError

#: The settings that block writes to an index (the flood-stage watermark sets the first).
WRITE_BLOCKS = ("read_only_allow_delete", "read_only", "write")


def is_block(error_type: str | None) -> bool:
    return error_type == "cluster_block_exception"


def write_block(cluster: Cluster, index: str) -> str | None:
    """The write block set on ``index`` (``index.blocks.NAME``), if any."""
    answer: dict[str, Any] = cluster.request("GET", f"/{index}/_settings/index.blocks.*")
    blocks: dict[str, Any] = {}
    for entry in answer.values():  # one entry: the index's concrete name
        blocks = entry.get("settings", {}).get("index", {}).get("blocks", {})
    return next((name for name in WRITE_BLOCKS if str(blocks.get(name)) == "true"), None)


def refused(
    target: str,
    status: int,
    error_type: str | None,
    reason: str | None,
    *,
    after: str,
) -> RequestError:
    """The error that stops a copy the cluster refuses (``after``: the retries made, if any)."""
    if is_block(error_type) or error_type == "index_create_block_exception":
        hint = (
            f"{target} is write-blocked. If the reason is the flood-stage disk watermark, free disk "
            "space on the data nodes (or add nodes): the engine lifts the block once disk use "
            "falls below the high watermark (before 7.4 / OpenSearch 1.x: PUT "
            f'/{target}/_settings {{"index.blocks.read_only_allow_delete": null}}). '
            "Then run the migration again: it resumes."
        )
    else:
        hint = "Let the cluster recover (or lower the throttle), then run the migration again: it resumes."
    return RequestError(
        f"{target} refused documents with {status} ({error_type}: {reason}){after}; nothing was "
        "dead-lettered and the copy stopped at its last checkpoint.",
        status=status,
        error_type=error_type,
        reason=reason,
        hint=hint,
    )
