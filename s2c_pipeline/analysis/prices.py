"""Storage list prices per class, with the date and the page each number was taken from.

Prices change and differ by region and contract, so every default names its source and the date it
was last seen there, and a user's file (JSON or YAML) can override any field or add classes. The
file is validated field by field: a bad value stops the run with one line naming the field, since a
cost report built on a silently ignored typo is worse than none.

Units: USD; storage per GB-month with GB = 2**30 bytes (how both AWS and Google bill storage);
request prices per 1,000 requests; byte sizes in bytes. ``put_per_1000`` is the price of a write
into the class (a PUT with that storage class, or a lifecycle transition into it);
``get_per_1000`` that of a read (for the Glacier archive classes, the restore request);
``retrieval_per_gb`` the per-GB fee on reads (for archives, the standard restore tier).
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

GB = 2**30

_AWS_PRICING = "https://aws.amazon.com/s3/pricing/"
_AWS_CLASSES = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/storage-class-intro.html"
_GCS_PRICING = "https://cloud.google.com/storage/pricing"
_GCS_CLASSES = "https://cloud.google.com/storage/docs/storage-classes"
_AWS_AS_OF = "2026-05"
_GCS_AS_OF = "2026-09"
# ``as_of`` dates the storage and retrieval prices; for these classes the request prices come from an
# earlier reading of the same page and were not seen again on that date.
_REQUESTS_OLDER = "PUT/GET prices from an earlier copy of the page than as_of: check them"


class PriceFileError(ValueError):
    """A price file that cannot be used; the message is one line naming the file and the field."""


@dataclass(frozen=True)
class Overhead:
    """Bytes billed per object on top of its size, at ``billed_as``'s storage price (None: its own)."""

    bytes: int
    billed_as: str | None = None


@dataclass(frozen=True)
class StorageClass:
    id: str
    provider: str
    name: str
    storage_per_gb_month: float
    put_per_1000: float
    get_per_1000: float
    retrieval_per_gb: float
    source: str
    as_of: str
    min_object_bytes: int = 0
    """Objects smaller than this are billed as this size (Standard-IA, Glacier IR: 128 KiB)."""
    min_storage_days: int = 0
    """Deleting or overwriting earlier is billed as if stored this long."""
    overhead: tuple[Overhead, ...] = ()
    notes: str = ""


@dataclass(frozen=True)
class PriceTable:
    classes: tuple[StorageClass, ...]
    origin: str = "built-in defaults"

    def by_id(self, class_id: str) -> StorageClass:
        for storage_class in self.classes:
            if storage_class.id == class_id:
                return storage_class
        raise KeyError(f"no storage class {class_id!r} in the price table ({self.origin})")

    def to_dict(self) -> dict[str, Any]:
        return {"origin": self.origin, "currency": "USD", "gb_bytes": GB,
                "classes": [dataclasses.asdict(c) for c in self.classes]}


def _aws(class_id: str, name: str, storage: float, put: float, get: float, retrieval: float, **extra) -> StorageClass:
    return StorageClass(class_id, "aws", name, storage, put, get, retrieval,
                        f"{_AWS_PRICING} (us-east-1); minimums: {_AWS_CLASSES}", _AWS_AS_OF, **extra)


def _gcs(class_id: str, name: str, storage: float, put: float, get: float, retrieval: float, **extra) -> StorageClass:
    return StorageClass(class_id, "gcp", name, storage, put, get, retrieval,
                        f"{_GCS_PRICING} (us-central1, regional); minimums: {_GCS_CLASSES}", _GCS_AS_OF, **extra)


_DEFAULTS = (
    _aws("s3-standard", "S3 Standard", 0.023, 0.005, 0.0004, 0.0,
         notes="first 50 TB/month tier; 0.022 above 50 TB, 0.021 above 500 TB"),
    _aws("s3-standard-ia", "S3 Standard-IA", 0.0125, 0.01, 0.001, 0.01,
         min_object_bytes=128 * 1024, min_storage_days=30, notes=_REQUESTS_OLDER),
    _aws("s3-glacier-ir", "S3 Glacier Instant Retrieval", 0.004, 0.02, 0.01, 0.03,
         min_object_bytes=128 * 1024, min_storage_days=90, notes=_REQUESTS_OLDER),
    _aws("s3-deep-archive", "S3 Glacier Deep Archive", 0.00099, 0.05, 0.10, 0.02, min_storage_days=180,
         overhead=(Overhead(32 * 1024), Overhead(8 * 1024, "s3-standard")),
         notes="40 KB per object: 32 KB of index at this rate, 8 KB of metadata at S3 Standard; "
               "reads need a restore (standard tier, up to 12 h; bulk: 0.0025/GB, 0.025 per 1,000); "
               + _REQUESTS_OLDER),
    _gcs("gcs-standard", "GCS Standard", 0.020, 0.005, 0.0004, 0.0),
    _gcs("gcs-nearline", "GCS Nearline", 0.010, 0.01, 0.001, 0.01, min_storage_days=30, notes=_REQUESTS_OLDER),
    _gcs("gcs-coldline", "GCS Coldline", 0.004, 0.02, 0.01, 0.02, min_storage_days=90, notes=_REQUESTS_OLDER),
    _gcs("gcs-archive", "GCS Archive", 0.0012, 0.05, 0.05, 0.05, min_storage_days=365, notes=_REQUESTS_OLDER),
)

_NUMBERS = ("storage_per_gb_month", "put_per_1000", "get_per_1000", "retrieval_per_gb")
_INTEGERS = ("min_object_bytes", "min_storage_days")
_STRINGS = ("provider", "name", "source", "as_of", "notes")
_REQUIRED_FOR_NEW = (*_NUMBERS, "provider", "name", "source", "as_of")
_TOP_LEVEL = ("classes", "replace_defaults")


def default_prices() -> PriceTable:
    return PriceTable(_DEFAULTS)


def load_prices(path: Path | None) -> PriceTable:
    """The defaults, overridden by the file at ``path`` when given.

    File layout (YAML or JSON)::

        replace_defaults: false        # true: only the file's classes
        classes:
          s3-standard: {storage_per_gb_month: 0.021}       # change one field of a default
          minio-hdd:                                       # a new class needs every price field
            {provider: self, name: MinIO on HDD, storage_per_gb_month: 0.004, put_per_1000: 0,
             get_per_1000: 0, retrieval_per_gb: 0, source: internal quote, as_of: 2026-11-01}

    Raises:
        PriceFileError: unreadable, not YAML/JSON, or any field missing or invalid.
    """
    if path is None:
        return default_prices()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PriceFileError(f"{path}: cannot read the price file ({exc.strerror or exc})") from None
    try:
        document = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise PriceFileError(f"{path}: not valid {'JSON' if str(path).endswith('.json') else 'YAML'} "
                             f"({' '.join(str(exc).split())})") from None
    return _merge(document, str(path))


def _merge(document: Any, origin: str) -> PriceTable:
    def fail(where: str, message: str) -> PriceFileError:
        return PriceFileError(f"{origin}: {where}: {message}")

    if not isinstance(document, Mapping):
        raise fail("top level", f"expected a mapping with 'classes', got {type(document).__name__}")
    unknown = sorted(set(document) - set(_TOP_LEVEL))
    if unknown:
        raise fail(unknown[0], f"unknown key; allowed: {', '.join(_TOP_LEVEL)}")
    replace = document.get("replace_defaults", False)
    if not isinstance(replace, bool):
        raise fail("replace_defaults", f"expected true or false, got {replace!r}")
    classes = document.get("classes")
    if not isinstance(classes, Mapping) or not classes:
        raise fail("classes", "expected a non-empty mapping of class id -> fields")
    merged: dict[str, StorageClass] = {} if replace else {c.id: c for c in _DEFAULTS}
    for class_id, fields in classes.items():
        where = f"classes.{class_id}"
        if not isinstance(fields, Mapping):
            raise fail(where, f"expected a mapping of fields, got {fields!r}")
        base = merged.get(str(class_id))
        values = _validated_fields(fields, where, fail)
        if base is None:
            missing = [name for name in _REQUIRED_FOR_NEW if name not in values]
            if missing:
                close = difflib.get_close_matches(str(class_id), list(merged), n=1)
                hint = f"did you mean {close[0]}? " if close else ""
                raise fail(f"{where}.{missing[0]}", f"missing: {class_id!r} is not a known class ({hint}known: "
                           f"{', '.join(merged) or 'none'}), and a new class needs " + ", ".join(_REQUIRED_FOR_NEW))
            merged[str(class_id)] = StorageClass(id=str(class_id), **values)
        else:
            merged[str(class_id)] = dataclasses.replace(base, **values)
    for storage_class in merged.values():
        for index, overhead in enumerate(storage_class.overhead):
            if overhead.billed_as is not None and overhead.billed_as not in merged:
                raise fail(f"classes.{storage_class.id}.overhead[{index}].billed_as",
                           f"unknown class {overhead.billed_as!r}")
    return PriceTable(tuple(merged.values()), origin=f"{origin} over built-in defaults" if not replace else origin)


def _validated_fields(fields: Mapping, where: str, fail) -> dict[str, Any]:
    allowed = (*_NUMBERS, *_INTEGERS, *_STRINGS, "overhead")
    values: dict[str, Any] = {}
    for name, value in fields.items():
        field = f"{where}.{name}"
        if name in _NUMBERS:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise fail(field, f"expected a number >= 0, got {value!r}")
            values[name] = float(value)
        elif name in _INTEGERS:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise fail(field, f"expected a whole number >= 0, got {value!r}")
            values[name] = value
        elif name in _STRINGS:
            if isinstance(value, datetime.date):  # YAML reads 2026-11-01 as a date
                value = value.isoformat()
            if not isinstance(value, str) or (name != "notes" and not value.strip()):
                raise fail(field, f"expected a non-empty string, got {value!r}")
            values[name] = value
        elif name == "overhead":
            values[name] = _overheads(value, field, fail)
        else:
            raise fail(field, f"unknown field; allowed: {', '.join(allowed)}")
    return values


def _overheads(value: Any, field: str, fail) -> tuple[Overhead, ...]:
    if not isinstance(value, list):
        raise fail(field, f"expected a list of {{bytes, billed_as}}, got {value!r}")
    out = []
    for index, item in enumerate(value):
        where = f"{field}[{index}]"
        if not isinstance(item, Mapping) or set(item) - {"bytes", "billed_as"}:
            raise fail(where, f"expected {{bytes: N, billed_as: CLASS (optional)}}, got {item!r}")
        size, billed_as = item.get("bytes"), item.get("billed_as")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise fail(f"{where}.bytes", f"expected a whole number >= 0, got {size!r}")
        if billed_as is not None and not isinstance(billed_as, str):
            raise fail(f"{where}.billed_as", f"expected a class id, got {billed_as!r}")
        out.append(Overhead(size, billed_as))
    return tuple(out)
