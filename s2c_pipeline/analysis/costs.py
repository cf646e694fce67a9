"""What a set of objects costs in one storage class: per month, to write once, to read back once.

A layout is described by its object count, its total bytes and a sample of object sizes, because
two of the charges depend on the size of each object, not on the total: the minimum billable size
(an 8 KB object in Standard-IA is billed as 128 KB) and the fixed overhead per object (40 KB in
Deep Archive). That is why one object per image is the wrong layout for archives of small
bitstreams, and per-shard tars are the right one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from s2c_pipeline.analysis.prices import GB, PriceTable, StorageClass


@dataclass(frozen=True)
class ObjectLayout:
    """How data sits in a store.

    Attributes:
        name: e.g. "per-shard tars".
        objects: how many objects (may be a projection, hence float).
        total_bytes: sum of the object sizes.
        sizes, weights: a sample of object sizes (bytes) and their weights; only their distribution
            matters, to apply minimum billable sizes.
    """

    name: str
    objects: float
    total_bytes: float
    sizes: tuple[float, ...]
    weights: tuple[float, ...] = ()

    def billable_bytes(self, minimum: int) -> float:
        """``total_bytes`` with every object below ``minimum`` billed as ``minimum``."""
        if minimum <= 0 or not self.sizes:
            return self.total_bytes
        sizes = np.asarray(self.sizes, dtype=float)
        weights = np.asarray(self.weights or [1.0] * len(sizes), dtype=float)
        actual = float(np.sum(weights * sizes))
        if actual <= 0:
            return self.objects * minimum
        return self.total_bytes * float(np.sum(weights * np.maximum(sizes, minimum))) / actual


@dataclass(frozen=True)
class LayoutCost:
    """One layout in one class. Money in USD; sizes in GB of 2**30 bytes."""

    class_id: str
    class_name: str
    layout: str
    objects: float
    stored_gb: float
    billable_gb: float
    """Stored bytes with minimum object sizes and the per-object overhead billed at this class's rate."""
    storage_usd_month: float
    """Everything billed per month, overhead billed at other classes' rates included."""
    overhead_usd_month: float
    """The part of ``storage_usd_month`` due to minimum sizes and per-object overheads."""
    write_usd: float
    """PUT (or lifecycle transition) requests to put every object into the class once."""
    read_all_usd: float
    """GET/restore requests plus per-GB retrieval fees to read every object back once."""
    min_storage_days: int


def layout_cost(layout: ObjectLayout, storage_class: StorageClass, prices: PriceTable) -> LayoutCost:
    stored_gb = layout.total_bytes / GB
    billable = layout.billable_bytes(storage_class.min_object_bytes)
    storage = billable / GB * storage_class.storage_per_gb_month
    own_overhead = 0
    for overhead in storage_class.overhead:
        if overhead.billed_as is None:
            own_overhead += overhead.bytes
            storage += layout.objects * overhead.bytes / GB * storage_class.storage_per_gb_month
        else:
            rate = prices.by_id(overhead.billed_as).storage_per_gb_month
            storage += layout.objects * overhead.bytes / GB * rate
    return LayoutCost(
        class_id=storage_class.id,
        class_name=storage_class.name,
        layout=layout.name,
        objects=layout.objects,
        stored_gb=stored_gb,
        billable_gb=(billable + layout.objects * own_overhead) / GB,
        storage_usd_month=storage,
        overhead_usd_month=storage - stored_gb * storage_class.storage_per_gb_month,
        write_usd=layout.objects / 1000 * storage_class.put_per_1000,
        read_all_usd=layout.objects / 1000 * storage_class.get_per_1000 + stored_gb * storage_class.retrieval_per_gb,
        min_storage_days=storage_class.min_storage_days,
    )


def cost_table(layouts: Sequence[ObjectLayout], prices: PriceTable) -> list[LayoutCost]:
    """Every layout in every class of ``prices``, class-major (the order of the price table)."""
    return [layout_cost(layout, c, prices) for c in prices.classes for layout in layouts]
