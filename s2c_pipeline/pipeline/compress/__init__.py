"""The way in: input shards to a committed output prefix.

``driver`` (``compress()``: list, check run.json, plan, schedule, index), ``weights_spec`` (the
checkpoint, read and hashed once on the driver), ``resume`` (which shards to do), ``shard_task``
(one shard on an actor: read, code, commit), ``shard_coder`` (pure: a shard's samples to the output
tar and every manifest row), ``commit`` (tar, manifest, then the marker), ``results`` and
``progress`` (what a run reports).
"""
