"""Storage-cost analysis: what a dataset would save before it is compressed, and what a run saved.

Modules, in the order data flows (docs/analysis.md):

- ``sampling``: shard sizes from listings, a seeded two-stage sample (shards, then images in them);
- ``coding``: the sample through our codec (and optionally the classical ones);
- ``stats``: weighted means and percentiles;
- ``projection``: ratio estimators and the two-stage bootstrap behind every interval;
- ``prices`` and ``costs``: dated list prices per storage class, and $/month for a layout;
- ``analyze``: the ``s2c analyze`` run; ``run_summary``: the ``s2c report`` summary of a prefix;
- ``plots``, ``document``, ``analysis_report``, ``run_report``: PNGs, and report.json/.md/.html.
"""

from s2c_pipeline.analysis.prices import PriceFileError, PriceTable, StorageClass, default_prices, load_prices

__all__ = ["PriceFileError", "PriceTable", "StorageClass", "default_prices", "load_prices"]
