"""Where work runs: connecting to Ray and sizing the actor pool (``cluster``), the driver-side
pool with its failure policies (``scheduler``, records in ``pool_records``), and the actors that
hold a loaded codec (``actors``). It knows tasks only as things to submit, retry and count."""
