"""The output prefix as a format: what ``s2c compress`` writes and everything else reads.

Modules, one question each:

- ``layout``: where each file lives under a prefix; ``members``: the output tar's member names;
- ``status``: the manifest's status vocabulary; ``outcomes``: the status of an image the codec
  did not code;
- ``manifest``: the Parquet schema, writer and reader of manifest parts;
- ``marker``: the commit marker, and the counts it records (``shard_stats``);
- ``run_record``: run.json; ``index``: index.json; ``weights``: the prefix's checkpoints;
- ``committed``: the one reader of a prefix's committed state;
- ``pairing``: an output tar's samples with their manifest rows.

Import from the module: this package itself imports nothing, so
``from s2c_pipeline.archive.members import S2C_EXTENSION`` stays cheap.
"""
