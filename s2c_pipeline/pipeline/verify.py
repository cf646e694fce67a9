"""``verify``: is an output prefix complete and unchanged? Markers, tars, manifests, bitstreams.

Structural checks run on the driver, several shards at a time (they are I/O-bound): each marker
against the hashes of its tar and manifest, each manifest row against its tar sample (names,
offsets, sizes), each bitstream's CRCs, leftovers without a marker, run.json and index.json.
With ``decode`` every bitstream is also decoded on actors and compared with the manifest's hash.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tarfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from s2c_pipeline.archive.committed import uncommitted_files
from s2c_pipeline.archive.index import build_index
from s2c_pipeline.archive.layout import OutputLayout
from s2c_pipeline.archive.manifest import MANIFEST_SCHEMA
from s2c_pipeline.archive.marker import Marker, list_marker_ids, read_markers
from s2c_pipeline.archive.pairing import (
    ShardMismatch,
    bitstream_member,
    carried,
    contents_from_bytes,
    damage,
    data_offsets,
    paired_sample,
    sample_rows,
)
from s2c_pipeline.archive.run_record import read_run_record
from s2c_pipeline.archive.status import Status
from s2c_pipeline.bitstream import BitstreamError, decode_container
from s2c_pipeline.pipeline.config import DecodeConfig
from s2c_pipeline.pipeline.decompress.decode_actors import run_decode_tasks
from s2c_pipeline.pipeline.decompress.decode_task import CHECK, DecodeTask
from s2c_pipeline.shards import filesystem

log = logging.getLogger(__name__)

_IO_THREADS = 8


@dataclass(frozen=True)
class VerifyReport:
    shards: int
    rows: int
    bitstreams: int
    decoded: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def format(self) -> str:
        head = (
            f"{'OK' if self.ok else 'PROBLEMS'}: {self.shards} shard(s), {self.rows} manifest row(s), "
            f"{self.bitstreams} bitstream(s) checked, {self.decoded} decoded, {len(self.problems)} problem(s)"
        )
        return "\n".join([head, *self.problems])


@dataclass(frozen=True)
class _ShardCheck:
    shard_id: str
    rows: list[dict[str, Any]]
    bitstreams: int
    problems: list[str]


def verify(prefix: str, *, decode: bool = False, config: DecodeConfig | None = None) -> VerifyReport:
    """Check everything under ``prefix``; never raises for what it finds, only reports it."""
    config = config or DecodeConfig()
    options = dict(config.storage_options)
    layout = OutputLayout.of(prefix)
    problems: list[str] = []
    if read_run_record(layout, options) is None:
        problems.append(f"{layout.run_json}: missing or not JSON")
    ids = sorted(list_marker_ids(layout, options))
    markers = read_markers(layout, options)
    problems += [f"{layout.marker(i)}: marker is not valid JSON" for i in ids if i not in markers]
    problems += [
        f"{url}: no commit marker in _done/ (uncommitted output: re-run compress)"
        for url in uncommitted_files(layout, options)
    ]
    problems += _check_index(layout, markers, options)
    with ThreadPoolExecutor(_IO_THREADS) as pool:
        checks = list(pool.map(lambda i: _check_shard(layout, i, markers[i], options), markers))
    for check in checks:
        problems += check.problems
    decoded = 0
    if decode:
        tasks = [
            DecodeTask(
                c.shard_id,
                layout.shard(c.shard_id),
                tuple(r for r in refs if r.status == Status.OK),
                len(refs),
                None,
                CHECK,
            )
            for c in checks
            if not c.problems and (refs := sample_rows(c.rows))
        ]
        results, report = run_decode_tasks(tasks, layout, config, role="verify")
        decoded = sum(r.decoded for r in results)
        problems += [e for r in results for e in r.errors]
        problems += [f"{f.name}: {f.errors[-1]}" for f in report.failures]
    for problem in problems:
        log.error("%s", problem)
    return VerifyReport(
        len(markers),
        sum(len(c.rows) for c in checks),
        sum(c.bitstreams for c in checks),
        decoded,
        tuple(problems),
    )


def _read(url: str, options: dict[str, Any]) -> bytes | None:
    fs, path = filesystem(url, options)
    try:
        return fs.cat_file(path)
    except FileNotFoundError:
        return None


def _check_shard(layout: OutputLayout, shard_id: str, marker: Marker, options: dict[str, Any]) -> _ShardCheck:
    tar_url, manifest_url = layout.shard(shard_id), layout.manifest(shard_id)
    problems: list[str] = []
    tar, parquet = _read(tar_url, options), _read(manifest_url, options)
    expected = (
        (tar_url, tar, marker.tar_sha256, marker.tar_bytes),
        (manifest_url, parquet, marker.manifest_sha256, marker.manifest_bytes),
    )
    for url, data, sha256, size in expected:
        if data is None:
            problems.append(f"{url}: missing, but its marker says the shard is committed")
        elif hashlib.sha256(data).hexdigest() != sha256:
            problems.append(
                f"{url}: sha256 differs from the marker's ({len(data)} bytes, marker says "
                f"{size}): the file changed after it was committed"
            )
    if tar is None or parquet is None:
        return _ShardCheck(shard_id, [], 0, problems)
    try:
        table = pq.read_table(pa.BufferReader(parquet))
    except (pa.ArrowInvalid, OSError) as exc:
        return _ShardCheck(
            shard_id, [], 0, [*problems, f"{manifest_url}: not a readable Parquet file ({exc})"]
        )
    if table.schema.names != MANIFEST_SCHEMA.names[: table.num_columns]:  # older parts lack newer columns
        problems.append(f"{manifest_url}: columns differ from the manifest schema")
        return _ShardCheck(shard_id, [], 0, problems)
    rows = table.to_pylist()
    if len(rows) != marker.rows:
        problems.append(f"{manifest_url}: {len(rows)} rows, the marker says {marker.rows}")
    bitstreams, row_problems = _check_rows(tar_url, tar, rows)
    return _ShardCheck(shard_id, rows, bitstreams, problems + row_problems)


def _check_rows(tar_url: str, tar: bytes, rows: list[dict[str, Any]]) -> tuple[int, list[str]]:
    """Each sample row against its tar sample; each bitstream's CRCs and identity."""
    try:
        contents = contents_from_bytes(tar, tar_url)
        offsets = data_offsets(tar)
    except (tarfile.TarError, OSError) as exc:
        return 0, [f"{tar_url}: not a readable tar ({exc})"]
    refs = sample_rows(rows)
    problems: list[str] = []
    bitstreams = 0
    by_key = {(r["key"], r["s2c_offset"]): r for r in rows}
    for ref in refs:
        try:
            sample = paired_sample(contents, ref, len(refs))
            carried(sample, ref)
            if ref.status != Status.OK:
                continue
            member = bitstream_member(sample, ref)
            if offsets.get(member.offset) != ref.s2c_offset or len(member.data) != ref.s2c_bytes:
                raise ShardMismatch(
                    f"sample {ref.key!r}: {ref.s2c_member} is not at the manifest's offset/size"
                )
            header = decode_container(member.data, source=f"{tar_url}:{member.name}").header
            row = by_key[(ref.key, ref.s2c_offset)]
            if (header.model_name, header.weights_id) != (row["model"], row["weights_id"]):
                raise ShardMismatch(
                    f"sample {ref.key!r}: bitstream names {header.model_id}, manifest says "
                    f"{row['model']}@{row['weights_id']}"
                )
            bitstreams += 1
        except ShardMismatch as exc:
            problems.append(f"{tar_url}: {exc}" if not str(exc).startswith(tar_url) else str(exc))
            if damage(contents) or len(contents.samples) != len(refs):
                break  # the pairing itself is broken: one message is enough
        except BitstreamError as exc:
            problems.append(str(exc))
    return bitstreams, problems


def _check_index(layout: OutputLayout, markers: Mapping[str, Marker], options: dict[str, Any]) -> list[str]:
    data = _read(layout.index_json, options)
    if data is None:
        return [f"{layout.index_json}: missing (a compress run writes it at its end)"]
    try:
        index = json.loads(data)
    except ValueError as exc:
        return [f"{layout.index_json}: not valid JSON ({exc})"]
    expected = build_index(layout, markers)
    if index.get("shardlist") != expected["shardlist"]:
        return [f"{layout.index_json}: does not match the markers (re-run compress to rebuild it)"]
    return []
