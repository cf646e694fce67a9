"""Price tables, cost arithmetic and the summaries behind the analysis reports (no codec needed)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from s2c_pipeline.analysis import PriceFileError, default_prices, load_prices
from s2c_pipeline.analysis.costs import ObjectLayout, layout_cost
from s2c_pipeline.analysis.prices import GB
from s2c_pipeline.analysis.stats import summarize, weighted_quantile
from s2c_pipeline.cli.analysis_verbs import parse_size

KIB = 1024


def test_default_prices_name_their_source_and_date() -> None:
    prices = default_prices()
    assert [c.id for c in prices.classes] == [
        "s3-standard", "s3-standard-ia", "s3-glacier-ir", "s3-deep-archive",
        "gcs-standard", "gcs-nearline", "gcs-coldline", "gcs-archive",
    ]
    for c in prices.classes:
        assert re.fullmatch(r"\d{4}-\d{2}(-\d{2})?", c.as_of) and c.source.startswith("https://")
    assert prices.by_id("s3-standard-ia").min_object_bytes == prices.by_id("s3-glacier-ir").min_object_bytes == 128 * KIB
    deep = prices.by_id("s3-deep-archive")
    assert sum(o.bytes for o in deep.overhead) == 40 * KIB and deep.overhead[1].billed_as == "s3-standard"


def test_costs_apply_minimum_sizes_and_per_object_overheads() -> None:
    prices = default_prices()
    small = ObjectLayout("1000 objects of 10 KiB", 1000, 1000 * 10 * KIB, (10 * KIB,))
    ia = layout_cost(small, prices.by_id("s3-standard-ia"), prices)
    assert ia.billable_gb == pytest.approx(1000 * 128 * KIB / GB)  # billed as 128 KiB each
    assert ia.storage_usd_month == pytest.approx(1000 * 128 * KIB / GB * 0.0125)
    assert ia.write_usd == pytest.approx(0.01) and ia.read_all_usd == pytest.approx(0.001 + 1000 * 10 * KIB / GB * 0.01)
    deep = layout_cost(small, prices.by_id("s3-deep-archive"), prices)
    expected = (1000 * (10 + 32) * KIB * 0.00099 + 1000 * 8 * KIB * 0.023) / GB
    assert deep.storage_usd_month == pytest.approx(expected)
    assert deep.overhead_usd_month == pytest.approx(expected - 1000 * 10 * KIB / GB * 0.00099)
    # objects above the minimum pay nothing extra; a mixed sample pays for its small part only
    large = ObjectLayout("two sizes", 2, 300 * KIB, (100 * KIB, 200 * KIB))
    assert large.billable_bytes(128 * KIB) == pytest.approx(328 * KIB)


def test_one_object_per_image_costs_more_than_per_shard_tars() -> None:
    """A million 20 KB bitstreams: as 1,000 tars of 20 MB, or as a million objects."""
    prices = default_prices()
    tars = ObjectLayout("tars", 1000, 20e9, (20e6,))
    images = ObjectLayout("images", 1_000_000, 20e9, (20e3,))
    for class_id in ("s3-standard-ia", "s3-glacier-ir", "s3-deep-archive"):
        storage_class = prices.by_id(class_id)
        t, i = layout_cost(tars, storage_class, prices), layout_cost(images, storage_class, prices)
        assert i.storage_usd_month > 2 * t.storage_usd_month and i.write_usd == pytest.approx(1000 * t.write_usd)
        assert i.read_all_usd > t.read_all_usd
    standard = prices.by_id("s3-standard")
    assert layout_cost(images, standard, prices).write_usd == pytest.approx(5.0)  # $0.005 per 1,000 PUTs


def write(tmp_path: Path, text: str, name: str = "prices.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_price_file_overrides_and_adds_classes(tmp_path: Path) -> None:
    prices = load_prices(write(tmp_path, """
classes:
  s3-standard: {storage_per_gb_month: 0.021}
  minio-hdd:
    provider: self-hosted
    name: MinIO on HDD
    storage_per_gb_month: 0.004
    put_per_1000: 0
    get_per_1000: 0
    retrieval_per_gb: 0
    min_object_bytes: 4096
    overhead: [{bytes: 512, billed_as: s3-standard}]
    source: internal quote
    as_of: 2026-11-01
"""))
    assert prices.by_id("s3-standard").storage_per_gb_month == 0.021
    assert prices.by_id("s3-standard").put_per_1000 == 0.005  # untouched fields keep their defaults
    minio = prices.by_id("minio-hdd")
    assert minio.as_of == "2026-11-01" and minio.min_object_bytes == 4096 and len(prices.classes) == 9
    only = load_prices(write(tmp_path, json.dumps({"replace_defaults": True, "classes": {"x": {
        "provider": "p", "name": "X", "storage_per_gb_month": 1, "put_per_1000": 0, "get_per_1000": 0,
        "retrieval_per_gb": 0, "source": "s", "as_of": "2026-01"}}}), "prices.json"))
    assert [c.id for c in only.classes] == ["x"]


@pytest.mark.parametrize(("text", "message"), [
    ("classes: [1, 2", "not valid YAML"),
    ("- a list", "top level: expected a mapping"),
    ("classes: {}", "classes: expected a non-empty mapping"),
    ("prices: {}", "prices: unknown key"),
    ("classes:\n  s3-standard: {storage_per_gb_month: cheap}", "classes.s3-standard.storage_per_gb_month: expected a number >= 0, got 'cheap'"),
    ("classes:\n  s3-standard: {put_per_1000: .nan}", "classes.s3-standard.put_per_1000: expected a number"),
    ("classes:\n  s3-standard-ia: {min_object_bytes: 1.5}", "classes.s3-standard-ia.min_object_bytes: expected a whole number"),
    ("classes:\n  s3-standard: {storage: 0.02}", "classes.s3-standard.storage: unknown field"),
    ("classes:\n  new: {provider: p, name: N, storage_per_gb_month: 1}", "classes.new.put_per_1000: missing"),
    ("classes:\n  s3-standrad: {storage_per_gb_month: 0.02}",
     "'s3-standrad' is not a known class (did you mean s3-standard? known: s3-standard, "),
    ("classes:\n  s3-standard: {overhead: [{bytes: 8, billed_as: nowhere}]}", "classes.s3-standard.overhead[0].billed_as: unknown class 'nowhere'"),
    ("classes:\n  s3-standard: {as_of: ''}", "classes.s3-standard.as_of: expected a non-empty string"),
    ("replace_defaults: yes please\nclasses: {a: {}}", "replace_defaults: expected true or false"),
])
def test_malformed_price_files_get_one_line_naming_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PriceFileError) as caught:
        load_prices(path)
    assert str(caught.value).startswith(f"{path}: ") and message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_price_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(PriceFileError, match="cannot read the price file"):
        load_prices(tmp_path / "absent.yaml")


def test_weighted_summaries() -> None:
    values = np.array([3.0, 1.0, 2.0, 10.0, np.inf])
    plain = summarize(values)
    assert plain.count == 4 and plain.mean == pytest.approx(4.0)  # inf (identical images) left out
    for q in (0.05, 0.3, 0.5, 0.95):
        assert weighted_quantile(values[:4], np.ones(4), q) == pytest.approx(
            np.percentile(values[:4], 100 * q, method="hazen"))
    # heavier weights pull the mean and the median towards their value
    weighted = summarize([1.0, 5.0], [3.0, 1.0])
    assert weighted.mean == pytest.approx(2.0) and weighted.p50 < 3.0 < summarize([1.0, 5.0], [1.0, 3.0]).p50
    assert summarize([]).count == 0


def test_sizes_parse_decimal_and_binary_units() -> None:
    assert parse_size("500TB") == 500e12 and parse_size("2 TiB") == 2 * 2**40 and parse_size("1024") == 1024
    with pytest.raises(ValueError, match="not a size"):
        parse_size("five terabytes")
