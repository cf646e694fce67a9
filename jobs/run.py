"""Ray Job entrypoint: run the ``s2c`` verb a job config names, and exit with its exit code.

    python jobs/run.py --config jobs/nightly-compress.yaml

It runs where the job driver runs (the head node): from the staging folder ``submit.py`` uploads,
or from ``/app/jobs`` in the container image (KubeRay, ``ray job submit``). The work itself is
``s2c``'s, so a re-run resumes exactly as ``s2c compress`` does: committed shards are skipped.
It logs which credential variables are set, never their values. With ``job.require_resources``
it first has the autoscaler bring those resources up (``cluster_wait``) and withdraws the request
at the end; for ``compress`` only when a dry run finds shards to do, so a night with nothing new
starts no GPU node.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import shlex
import sys
from collections.abc import Mapping

from cluster_wait import ResourcesUnavailable, request, wait_for_resources
from jobspec import JobSpec, JobSpecError, load_job_spec

log = logging.getLogger("s2c.job")

EXIT_USAGE, EXIT_NOT_RUN = 2, 3
CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)
"""Variables botocore reads credentials from; when none is set it falls back to the instance profile."""


def credential_summary(spec: JobSpec, environ: Mapping[str, str] = os.environ) -> str:
    """``NAME set, NAME unset, ...``: enough to debug a 403 without printing a secret."""
    names = dict.fromkeys((*CREDENTIAL_VARIABLES, *spec.job.env_from_submitter))
    parts = [f"{name} {'set' if environ.get(name) else 'unset'}" for name in names]
    if not any(environ.get(name) for name in CREDENTIAL_VARIABLES):
        parts.append("(no keys: S3 access comes from the node's instance profile or IAM role, if any)")
    return ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run one s2c verb from a job config file (a Ray job entrypoint)."
    )
    parser.add_argument("--config", required=True, help="the job config YAML (see jobs/jobspec.py)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        spec = load_job_spec(args.config)
    except JobSpecError as exc:
        log.error("%s", exc)
        return EXIT_USAGE
    command = spec.argv()
    log.info("job %s: s2c %s", spec.job.name, shlex.join(command))
    log.info("credentials: %s", credential_summary(spec))
    code = _run(spec, command)
    log.info("job %s: s2c %s exited with %d", spec.job.name, spec.verb, code)
    return code


def _run(spec: JobSpec, command: list[str]) -> int:
    if not spec.job.require_resources:
        return _run_s2c(command)
    if spec.verb == "compress" and "--dry-run" not in command:
        code, todo, output = _dry_run(command)
        if code != 0:  # the real run would fail the same way: report it without starting nodes
            sys.stdout.write(output)
            return code
        if todo == 0:
            log.info("dry run: nothing to compress, so no resources are requested")
            return _run_s2c(command)
        log.info("dry run: %d shard(s) to compress", todo)
    return _run_s2c_with_resources(spec, command)


def _run_s2c(command: list[str]) -> int:
    from s2c_pipeline.cli.main import main as s2c_main

    return s2c_main(command)


def _dry_run(command: list[str]) -> tuple[int, int, str]:
    """(exit code, shards to do, output) of ``s2c compress --dry-run``, which lists but starts no Ray.

    Its per-shard "would compress" lines are silenced: the real run logs what it does.
    """
    output = io.StringIO()
    pipeline_log = logging.getLogger("s2c_pipeline")
    level = pipeline_log.level
    pipeline_log.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(output):
            code = _run_s2c([*command, "--dry-run"])
    finally:
        pipeline_log.setLevel(level)
    todo = sum(line.startswith("to do: ") for line in output.getvalue().splitlines())
    return code, todo, output.getvalue()


def _run_s2c_with_resources(spec: JobSpec, command: list[str]) -> int:
    """Connect to the job's cluster, bring ``require_resources`` up, run s2c on that connection.

    s2c reuses a Ray already initialised in its process, so the actors it starts see the nodes
    requested here; the request is withdrawn whatever happens.
    """
    import ray

    ray.init(logging_level=logging.WARNING, log_to_driver=True)
    try:
        request(spec.job.require_resources)
        try:
            wait_for_resources(
                spec.job.require_resources, spec.job.resource_wait_s, cluster_resources=ray.cluster_resources
            )
            return _run_s2c(command)
        except ResourcesUnavailable as exc:
            log.error("job %s: not starting s2c %s: %s", spec.job.name, spec.verb, exc)
            return EXIT_NOT_RUN
        finally:
            request({})
    finally:
        ray.shutdown()


if __name__ == "__main__":
    sys.exit(main())
