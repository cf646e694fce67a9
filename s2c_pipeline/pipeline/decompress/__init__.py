"""The way back: chosen samples of a committed prefix to PNG files or WebDataset shards.

``driver`` (``decompress()``: choose rows, group them into tasks), ``selection`` (``--keys`` and
``--where``), ``decode_actors`` (running decode tasks on actors, for decompress and ``verify
--decode``), ``decode_task`` (one output shard on an actor: decode, check, write), and the names a
sample may be written under (``sample_names``, ``output_paths``), which compress also applies.
"""
