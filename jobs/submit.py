"""Submit a job config to a Ray cluster's job server, stream its logs, exit with its exit status.

    python jobs/submit.py --config jobs/nightly-compress.yaml --address http://HEAD:8265

What travels in the runtime env: a staging folder with the entrypoint (``run.py`` and the two
modules it imports) and the config (``working_dir``) and, unless ``--cluster-code``, the
``s2c_pipeline`` package this machine imports (``py_modules``), so the cluster runs the code you
tested; dependencies come from the cluster's image. ``job.env`` and the variables named in ``job.env_from_submitter`` become the
job's environment. Their values are never logged here, but Ray shows a job's runtime env on its
dashboard: prefer credentials the cluster already has (instance profile, Kubernetes Secret).

Re-submitting the same config is how a failed or interrupted run resumes: each submission gets a
new submission id, and the pipeline skips every shard already committed under the output prefix.

Exit status: 0 the job succeeded; the driver's own exit code when it ran and failed (``s2c``:
1 failed shards or bad data, 2 bad usage; 128+N when killed by signal N); 3 the job never ran its
driver (runtime env or cluster failure, unreachable job server, ``require_resources`` not met in
time) or was stopped; 2 a bad config or a variable named in ``env_from_submitter`` that is not set
here; 130 interrupted here (the job keeps running).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import io
import logging
import os
import secrets
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from jobspec import JobSpec, JobSpecError, load_job_spec

log = logging.getLogger("s2c.submit")

EXIT_OK, EXIT_USAGE, EXIT_NOT_RUN, EXIT_INTERRUPTED = 0, 2, 3, 130
CODE_EXCLUDES = ("__pycache__", "*.pyc")
_STAGED = ("run.py", "jobspec.py", "cluster_wait.py")


def submission_id_for(spec: JobSpec, now: datetime | None = None) -> str:
    """``NAME-YYYYmmddTHHMMSSZ-xxxx``: unique per submission, sortable, readable in ``ray job list``."""
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    return f"{spec.job.name}-{stamp}-{secrets.token_hex(2)}"


def check_command(spec: JobSpec) -> None:
    """Parse the command with s2c's own parser here, so a typo fails before it costs cluster time."""
    from s2c_pipeline.cli.main import build_parser

    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            build_parser().parse_args(spec.argv())
    except SystemExit:
        message = errors.getvalue().strip().splitlines()
        raise JobSpecError(
            f"{spec.source}: s2c rejects the command: {message[-1] if message else 'bad usage'}"
        ) from None


def runtime_env(
    spec: JobSpec, staging: Path, *, ship_code: bool, environ: Mapping[str, str]
) -> dict[str, Any]:
    """The job's runtime env; raises JobSpecError when a variable to pass on is not set here."""
    missing = [name for name in spec.job.env_from_submitter if not environ.get(name)]
    if missing:
        raise JobSpecError(
            f"{spec.source}: job.env_from_submitter names {', '.join(missing)}, not set in this environment"
        )
    env_vars = dict(spec.job.env)
    env_vars.update({name: environ[name] for name in spec.job.env_from_submitter})
    env: dict[str, Any] = {
        "working_dir": str(staging),
        "env_vars": env_vars,
        "excludes": [*CODE_EXCLUDES, *spec.job.excludes],
    }
    if ship_code:
        env["py_modules"] = [str(package_dir())]
    return env


def package_dir() -> Path:
    """The folder of the ``s2c_pipeline`` package this interpreter imports (found without importing it)."""
    found = importlib.util.find_spec("s2c_pipeline")
    if found is None or not found.submodule_search_locations:
        raise JobSpecError("s2c_pipeline is not importable here: install it, or pass --cluster-code")
    return Path(next(iter(found.submodule_search_locations)))


@contextlib.contextmanager
def staging_folder(config: Path) -> Iterator[Path]:
    """A temporary folder with the entrypoint and the config as ``job.yaml`` (the job's working dir)."""
    here = Path(__file__).resolve().parent
    with tempfile.TemporaryDirectory(prefix="s2c-job-") as tmp:
        folder = Path(tmp)
        for name in _STAGED:
            shutil.copy2(here / name, folder / name)
        shutil.copy2(config, folder / "job.yaml")
        yield folder


def exit_code(status: str, driver_exit_code: int | None) -> int:
    if status == "SUCCEEDED":
        return EXIT_OK
    if status == "FAILED" and driver_exit_code:
        return driver_exit_code if driver_exit_code > 0 else 128 - driver_exit_code
    return EXIT_NOT_RUN


def follow(client: Any, submission_id: str, out: TextIO, poll_s: float = 1.0) -> str:
    """Copy the job's log to ``out`` as it is written, then wait for a final status and return it."""

    async def tail() -> None:
        async for chunk in client.tail_job_logs(submission_id):
            out.write(chunk)
            out.flush()

    try:
        asyncio.run(tail())
    except Exception as exc:  # policy: a broken log stream must not lose the exit status; say where logs are
        log.warning(
            "log stream ended early (%s); waiting for the status. Logs: ray job logs %s", exc, submission_id
        )
    while (status := str(client.get_job_status(submission_id).value)) not in (
        "SUCCEEDED",
        "FAILED",
        "STOPPED",
    ):
        time.sleep(poll_s)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Submit an s2c job config to a Ray cluster and follow it.")
    parser.add_argument(
        "--config", required=True, type=Path, help="the job config YAML (see jobs/jobspec.py)"
    )
    parser.add_argument(
        "--address",
        default=None,
        help="job server, e.g. http://HEAD:8265 (default: RAY_API_SERVER_ADDRESS or RAY_ADDRESS)",
    )
    parser.add_argument("--submission-id", default=None, help="default: NAME-UTCSTAMP-xxxx (must be new)")
    parser.add_argument(
        "--cluster-code",
        action="store_true",
        help="use the s2c_pipeline installed on the cluster instead of uploading this one",
    )
    parser.add_argument("--no-wait", action="store_true", help="print the submission id and return at once")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        spec = load_job_spec(args.config)
        check_command(spec)
    except JobSpecError as exc:
        log.error("%s", exc)
        return EXIT_USAGE

    from ray.job_submission import JobSubmissionClient

    submission_id = args.submission_id or submission_id_for(spec)
    try:
        client = JobSubmissionClient(args.address)
        with staging_folder(args.config) as staging:
            env = runtime_env(spec, staging, ship_code=not args.cluster_code, environ=os.environ)
            if spec.job.env_from_submitter:
                log.info(
                    "passing %s from this environment (values not logged)",
                    ", ".join(spec.job.env_from_submitter),
                )
            client.submit_job(
                entrypoint="python run.py --config job.yaml",
                submission_id=submission_id,
                runtime_env=env,
                metadata={"s2c_job": spec.job.name, "s2c_verb": spec.verb},
                entrypoint_num_cpus=spec.job.entrypoint_num_cpus,
            )
    except JobSpecError as exc:
        log.error("%s", exc)
        return EXIT_USAGE
    except (OSError, RuntimeError, ValueError) as exc:  # unreachable, refused (auth), id already used
        log.error("could not submit to %s: %s", args.address or "RAY_API_SERVER_ADDRESS/RAY_ADDRESS", exc)
        return EXIT_NOT_RUN
    log.info("submitted %s: s2c %s", submission_id, shlex.join(spec.argv()))
    if args.no_wait:
        print(submission_id)
        return EXIT_OK
    try:
        status = follow(client, submission_id, sys.stdout)
    except KeyboardInterrupt:
        log.warning("stopped following; the job keeps running. Stop it with: ray job stop %s", submission_id)
        return EXIT_INTERRUPTED
    info = client.get_job_info(submission_id)
    code = exit_code(status, info.driver_exit_code)
    detail = f": {info.message}" if status != "SUCCEEDED" and info.message else ""
    log.info("job %s %s, exit status %d%s", submission_id, status, code, detail)
    return code


if __name__ == "__main__":
    sys.exit(main())
