"""A job config file: which ``s2c`` verb to run, its arguments, and how to run it as a Ray job.

One YAML file drives both sides: ``run.py`` (on the cluster) turns it into an ``s2c`` command line,
``submit.py`` (on your machine) into a Ray job with a runtime environment. Option names are the
CLI's long options with ``_`` or ``-``, so every ``s2c`` option works here with no mapping to keep
in sync. Credentials never go in this file: a variable whose name looks like one is refused, and
``job.env_from_submitter`` names variables whose *values* are read from the submitting shell.

Example::

    verb: compress
    args: ["s3://raw/{00000..00999}.tar", "s3://archive/photos-s2c"]
    options: {quality: 4, no_progress: true}
    job:
      name: nightly-compress
      env: {AWS_DEFAULT_REGION: us-east-1}
      env_from_submitter: [AWS_PROFILE]
      require_resources: {GPU: 2}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

VERBS = ("compress", "decompress", "verify", "analyze", "report")
"""The s2c verbs a job may run (the training and single-image verbs are not batch jobs)."""

_TOP_KEYS = {"verb", "args", "options", "job"}
_JOB_KEYS = {
    "name",
    "env",
    "env_from_submitter",
    "entrypoint_num_cpus",
    "excludes",
    "require_resources",
    "resource_wait_s",
}
_CREDENTIAL_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|ACCESS_KEY|CREDENTIAL|PRIVATE_KEY", re.IGNORECASE)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_JOB_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
Scalar = str | int | float | bool


class JobSpecError(ValueError):
    """The config file is malformed; the message names the file and the key."""


@dataclass(frozen=True)
class JobSettings:
    """How the job runs on Ray: submit.py builds the runtime env from it, run.py waits for resources."""

    name: str
    env: Mapping[str, str] = field(default_factory=dict)
    """Plain settings for the job's processes (region, endpoints); never secrets."""
    env_from_submitter: tuple[str, ...] = ()
    """Variable names whose values are copied from the submitting environment at submit time."""
    entrypoint_num_cpus: float = 0.0
    """CPUs reserved for the driver; 0 lets it share the head with Ray's own processes."""
    excludes: tuple[str, ...] = ()
    """Extra gitignore-style patterns left out of the uploaded code."""
    require_resources: Mapping[str, float] = field(default_factory=dict)
    """Resources (e.g. ``{GPU: 2}``) run.py asks the autoscaler for and waits for before s2c starts."""
    resource_wait_s: float = 1800.0


@dataclass(frozen=True)
class JobSpec:
    verb: str
    args: tuple[str, ...]
    options: Mapping[str, Scalar | tuple[Scalar, ...] | None]
    job: JobSettings
    source: str = ""
    """Where the spec was read from, for messages."""

    def argv(self) -> list[str]:
        """The ``s2c`` command line (without the program name): verb, args, then options.

        ``true`` becomes a bare flag, ``false``/``null`` leave the option out, a list repeats it.
        """
        argv = [self.verb, *self.args]
        for key, value in self.options.items():
            flag = "--" + key.replace("_", "-")
            values = value if isinstance(value, tuple) else (value,)
            for item in values:
                if item is None or item is False:
                    continue
                argv += [flag] if item is True else [flag, str(item)]
        return argv


def load_job_spec(path: str | Path) -> JobSpec:
    """Read and check a job config file (raises JobSpecError with the file name)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise JobSpecError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise JobSpecError(f"{path}: not valid YAML ({exc})") from None
    return parse_job_spec(data, source=str(path), default_name=path.stem)


def parse_job_spec(data: Any, *, source: str = "<config>", default_name: str = "s2c-job") -> JobSpec:
    def fail(message: str) -> JobSpecError:
        return JobSpecError(f"{source}: {message}")

    if not isinstance(data, Mapping):
        raise fail("the top level must be a mapping with keys verb, args, options, job")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise fail(f"unknown key(s) {sorted(unknown)}; allowed: {sorted(_TOP_KEYS)}")
    verb = data.get("verb")
    if verb not in VERBS:
        raise fail(f"verb must be one of {', '.join(VERBS)}, got {verb!r}")
    args = data.get("args") or []
    if not isinstance(args, list) or not args or not all(isinstance(a, str) and a for a in args):
        raise fail("args must be a non-empty list of strings (the verb's positional arguments)")
    options = _options(data.get("options") or {}, fail)
    job = _job_settings(data.get("job") or {}, default_name, fail)
    return JobSpec(verb=verb, args=tuple(args), options=options, job=job, source=source)


def _options(raw: Any, fail) -> dict[str, Scalar | tuple[Scalar, ...] | None]:
    if not isinstance(raw, Mapping):
        raise fail("options must be a mapping of long option names to values")
    options: dict[str, Scalar | tuple[Scalar, ...] | None] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not re.fullmatch(r"[a-z][a-z0-9_-]*", key):
            raise fail(f"option {key!r}: use the long option name, e.g. cpus_per_actor or cpus-per-actor")
        _refuse_credential(key, f"option {key!r}", fail)
        if isinstance(value, list):
            if not all(_is_scalar(v) for v in value):
                raise fail(f"option {key!r}: a list may hold only strings and numbers")
            options[key] = tuple(value)
        elif value is None or _is_scalar(value):
            options[key] = value
        else:
            raise fail(
                f"option {key!r}: expected a string, number, boolean or list, got {type(value).__name__}"
            )
    return options


def _job_settings(raw: Any, default_name: str, fail) -> JobSettings:
    if not isinstance(raw, Mapping):
        raise fail("job must be a mapping")
    unknown = set(raw) - _JOB_KEYS
    if unknown:
        raise fail(f"job: unknown key(s) {sorted(unknown)}; allowed: {sorted(_JOB_KEYS)}")
    name = str(raw.get("name", default_name))
    if not _JOB_NAME.match(name):
        raise fail(
            f"job.name {name!r}: use lower-case letters, digits and '-' (it prefixes the submission id)"
        )
    env = raw.get("env") or {}
    if not isinstance(env, Mapping):
        raise fail("job.env must be a mapping of variable names to values")
    for key, value in env.items():
        _check_env_name(key, "job.env", fail)
        _refuse_credential(key, f"job.env {key}", fail)
        if not _is_scalar(value):
            raise fail(f"job.env {key}: the value must be a string or number")
    passed = raw.get("env_from_submitter") or []
    if not isinstance(passed, list):
        raise fail("job.env_from_submitter must be a list of variable names")
    for key in passed:
        _check_env_name(key, "job.env_from_submitter", fail)
    excludes = raw.get("excludes") or []
    if not isinstance(excludes, list) or not all(isinstance(e, str) for e in excludes):
        raise fail("job.excludes must be a list of patterns")
    cpus = raw.get("entrypoint_num_cpus", 0)
    if not _is_number(cpus) or cpus < 0:
        raise fail("job.entrypoint_num_cpus must be a number >= 0")
    required = raw.get("require_resources") or {}
    if not isinstance(required, Mapping) or not all(
        isinstance(k, str) and _is_number(v) and v > 0 for k, v in required.items()
    ):
        raise fail("job.require_resources must map resource names (GPU, CPU, ...) to positive numbers")
    wait_s = raw.get("resource_wait_s", 1800)
    if not _is_number(wait_s) or wait_s <= 0:
        raise fail("job.resource_wait_s must be a positive number of seconds")
    return JobSettings(
        name=name,
        env={k: str(v) for k, v in env.items()},
        env_from_submitter=tuple(passed),
        entrypoint_num_cpus=float(cpus),
        excludes=tuple(excludes),
        require_resources={k: float(v) for k, v in required.items()},
        resource_wait_s=float(wait_s),
    )


def _check_env_name(key: Any, where: str, fail) -> None:
    if not isinstance(key, str) or not _ENV_NAME.match(key):
        raise fail(f"{where}: {key!r} is not an environment variable name")


def _refuse_credential(key: str, where: str, fail) -> None:
    if _CREDENTIAL_NAME.search(key):
        raise fail(
            f"{where} looks like a credential; never write one into a job config. List the variable's "
            "name under job.env_from_submitter, or give the cluster its own (instance profile, Kubernetes Secret)"
        )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)
