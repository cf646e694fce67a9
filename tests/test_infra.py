"""infra/ and ray_cluster.yaml checked by tools: Kubernetes and KubeRay schemas, the Ray launcher's
schema, and the Dockerfiles' critical lines (no Docker engine here, so the images are not built).

Core kinds go through ``kubernetes_validate`` (offline, strict: unknown fields fail); KubeRay kinds
through jsonschema with the CRD schemas vendored in infra/schemas/kuberay/ (v1.7.0), closed the way
the API server closes them (infra/schemas/kuberay/README.md says what that does and does not catch).
The core schemas check field names and types but carry few enums (``concurrencyPolicy: Forbidden``
passes them), so the values that matter are also asserted directly below.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import ray
import yaml

REPO = Path(__file__).resolve().parents[1]
INFRA = REPO / "infra"
K8S = INFRA / "k8s"
KUBERAY_SCHEMAS = INFRA / "schemas" / "kuberay"
K8S_VERSIONS = ("1.33.0", "1.37.0")
"""The oldest and newest Kubernetes minor versions we claim (kubernetes_validate ships both)."""
KUBERAY_KINDS = {"RayCluster", "RayJob", "RayCronJob"}
CREDENTIAL_ENV = re.compile(r"SECRET|PASSWORD|TOKEN|ACCESS_KEY", re.IGNORECASE)

sys.path.insert(0, str(REPO / "jobs"))
import jobspec  # noqa: E402

# ---- loading -------------------------------------------------------------------------------------


def _manifests() -> list[tuple[str, dict]]:
    """(label, document) for every manifest in infra/k8s, plus the RayJob the CronJob creates."""
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        for index, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc:
                docs.append((f"{path.name}#{index}:{doc.get('kind')}", doc))
    for label, doc in list(docs):
        if doc["kind"] == "ConfigMap" and "rayjob.yaml" in doc.get("data", {}):
            docs.append((f"{label}/rayjob.yaml:RayJob", yaml.safe_load(doc["data"]["rayjob.yaml"])))
    return docs


def _find(kind: str, name: str | None = None) -> dict:
    found = [
        d
        for _, d in _manifests()
        if d["kind"] == kind and (name is None or d["metadata"].get("name") == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def closed(schema: Any) -> Any:
    """The schema with unknown fields refused wherever it lists properties, as the API server does
    (it prunes or, with kubectl's default --validate=strict, rejects them) unless the schema
    preserves unknown fields."""
    if isinstance(schema, list):
        return [closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: closed(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


_VALIDATORS: dict[str, jsonschema.protocols.Validator] = {}


def kuberay_validator(kind: str) -> jsonschema.protocols.Validator:
    if kind not in _VALIDATORS:
        schema = closed(json.loads((KUBERAY_SCHEMAS / f"{kind.lower()}.json").read_text()))
        _VALIDATORS[kind] = jsonschema.Draft7Validator(schema)
    return _VALIDATORS[kind]


def schema_errors(doc: dict, k8s_version: str = K8S_VERSIONS[0]) -> list[str]:
    """Every schema error of one manifest, as ``path: message`` lines (empty when valid)."""
    if doc.get("kind") in KUBERAY_KINDS:
        assert doc["apiVersion"] == "ray.io/v1", doc["apiVersion"]
        return [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in kuberay_validator(doc["kind"]).iter_errors(doc)
        ]
    try:
        kubernetes_validate.validate(doc, k8s_version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{'/'.join(map(str, exc.path))}: {exc.message}"]
    return []


# ---- every manifest passes its schema ---------------------------------------------------------------


def test_manifests_cover_the_kinds_we_promise() -> None:
    kinds = {doc["kind"] for _, doc in _manifests()}
    assert {
        "RayCluster",
        "RayJob",
        "RayCronJob",
        "CronJob",
        "Secret",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ConfigMap",
        "Namespace",
    } <= kinds


@pytest.mark.parametrize("k8s_version", K8S_VERSIONS)
@pytest.mark.parametrize(("label", "doc"), _manifests(), ids=[label for label, _ in _manifests()])
def test_manifest_passes_its_schema(label: str, doc: dict, k8s_version: str) -> None:
    assert schema_errors(doc, k8s_version) == []


def _mutations() -> Iterator[tuple[str, str, Any, str]]:
    """(kind, description, mutate(doc) -> None, expected error fragment)."""

    def typo(doc: dict) -> None:
        doc["spec"]["entrypiont"] = doc["spec"].pop("entrypoint")

    def replicas_as_string(doc: dict) -> None:
        doc["spec"]["workerGroupSpecs"][0]["replicas"] = "2"

    def ray_start_param_as_number(doc: dict) -> None:
        doc["spec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] = 0

    def bad_quantity(doc: dict) -> None:
        container = doc["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
        container["resources"]["limits"]["memory"] = "8 GB"

    def nested_typo(doc: dict) -> None:
        container = doc["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
        container["resource"] = container.pop("resources")

    def cron_typo(doc: dict) -> None:
        doc["spec"]["schedul"] = doc["spec"].pop("schedule")

    def cron_job_template_typo(doc: dict) -> None:
        doc["spec"]["jobTemplate"]["entrypoint"] = 42

    def secret_ref_typo(doc: dict) -> None:
        env = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
        env["imagePullPolice"] = "Always"

    def role_verbs_not_a_list(doc: dict) -> None:
        doc["rules"][0]["verbs"] = "create"

    yield "RayJob", "field name typo", typo, "entrypiont"
    yield "RayCluster", "replicas as a string", replicas_as_string, "is not of type 'integer'"
    yield (
        "RayCluster",
        "rayStartParams value as a number",
        ray_start_param_as_number,
        "is not of type 'string'",
    )
    yield "RayJob", "malformed quantity", bad_quantity, "8 GB"
    yield "RayCluster", "typo deep in a pod template", nested_typo, "resource"
    yield "RayCronJob", "schedule typo", cron_typo, "schedul"
    yield "RayCronJob", "entrypoint as a number", cron_job_template_typo, "is not of type 'string'"
    yield "CronJob", "container field typo", secret_ref_typo, "imagePullPolice"
    yield "Role", "verbs as a string", role_verbs_not_a_list, "create"


@pytest.mark.parametrize(
    ("kind", "what", "mutate", "fragment"), list(_mutations()), ids=[m[1] for m in _mutations()]
)
def test_the_schema_check_rejects_a_broken_manifest(kind: str, what: str, mutate, fragment: str) -> None:
    doc = copy.deepcopy(_find(kind, "s2c-compress" if kind == "RayJob" else None))
    assert schema_errors(doc) == []
    mutate(doc)
    errors = schema_errors(doc)
    assert errors, f"{kind} with {what} passed the schema check"
    assert any(fragment in e for e in errors), errors


def test_what_the_kuberay_schemas_leave_open() -> None:
    """Documented gaps (infra/schemas/kuberay/README.md): top-level metadata is free-form, and
    cross-field rules such as minReplicas <= replicas are not in the schema (checked below)."""
    doc = copy.deepcopy(_find("RayCluster"))
    doc["metadata"]["labelz"] = {"a": "b"}
    group = doc["spec"]["workerGroupSpecs"][0]
    group["minReplicas"], group["maxReplicas"] = 5, 1
    assert schema_errors(doc) == []


# ---- what the schemas cannot say -----------------------------------------------------------------


def _pod_specs(doc: dict) -> Iterator[tuple[str, dict]]:
    kind, spec = doc["kind"], doc.get("spec")
    if kind == "RayCronJob":
        spec = spec["jobTemplate"]
    if kind in ("RayJob", "RayCronJob"):
        if "submitterPodTemplate" in spec:
            yield "submitter", spec["submitterPodTemplate"]["spec"]
        spec = spec["rayClusterSpec"]
    if kind in ("RayCluster", "RayJob", "RayCronJob"):
        yield "head", spec["headGroupSpec"]["template"]["spec"]
        for group in spec["workerGroupSpecs"]:
            yield group["groupName"], group["template"]["spec"]
    if kind == "CronJob":
        yield "cron", spec["jobTemplate"]["spec"]["template"]["spec"]


def _containers() -> list[tuple[str, str, dict, dict]]:
    return [
        (label, role, pod, c)
        for label, doc in _manifests()
        for role, pod in _pod_specs(doc)
        for c in pod["containers"]
    ]


def test_every_container_has_cpu_and_memory_requests_and_limits() -> None:
    containers = _containers()
    assert len(containers) >= 10
    for label, role, _, container in containers:
        resources = container.get("resources", {})
        for part in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources.get(part, {})), f"{label} {role}: {part} missing"


def test_gpu_workers_ask_for_a_gpu_and_heads_do_not() -> None:
    roles = {}
    for label, role, pod, container in _containers():
        limits = container["resources"]["limits"]
        roles.setdefault(role, set()).add(limits.get("nvidia.com/gpu"))
        if role == "gpu":
            assert limits["nvidia.com/gpu"] == container["resources"]["requests"]["nvidia.com/gpu"] == "1"
            assert container["image"].endswith("-gpu"), label
            assert any(t.get("key") == "nvidia.com/gpu" for t in pod.get("tolerations", [])), label
    assert roles["gpu"] == {"1"} and roles["head"] == {None}


def test_credentials_only_come_from_secrets() -> None:
    secret_refs = 0
    for label, role, _, container in _containers():
        for env in container.get("env", []):
            if CREDENTIAL_ENV.search(env["name"]):
                assert "value" not in env, f"{label} {role}: literal {env['name']}"
                assert env["valueFrom"]["secretKeyRef"]["name"] == "s2c-s3-credentials"
                secret_refs += 1
    assert secret_refs >= 8
    secret = _find("Secret")
    assert secret["metadata"]["name"] == "s2c-s3-credentials"
    assert all(v.startswith("<placeholder") for v in secret["stringData"].values()), (
        "a real value in the example"
    )
    text = "\n".join(p.read_text() for p in K8S.glob("*.yaml")) + (REPO / "ray_cluster.yaml").read_text()
    # an access key id, or a 40-character secret assigned to a secret-key name
    assert not re.search(
        r"\b(AKIA|ASIA)[0-9A-Z]{16}\b|secret_access_key\W{1,4}[A-Za-z0-9/+]{40}", text, re.IGNORECASE
    )


def test_images_are_pinned_and_pods_run_as_non_root() -> None:
    for label, role, pod, container in _containers():
        name, _, tag = container["image"].rpartition(":")
        assert name and tag and tag != "latest" and "/" not in tag, f"{label} {role}: {container['image']}"
        assert pod["securityContext"]["runAsNonRoot"] is True, f"{label} {role}"
        if container["image"].startswith("registry.example.com/s2c-pipeline"):
            assert pod["securityContext"]["runAsUser"] == 1000  # the image's s2c user


def test_replica_bounds_hold() -> None:
    for label, doc in _manifests():
        if doc["kind"] not in KUBERAY_KINDS:
            continue
        spec = doc["spec"].get("jobTemplate", doc["spec"])
        spec = spec.get("rayClusterSpec", spec)
        for group in spec["workerGroupSpecs"]:
            assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"], label
            assert group["maxReplicas"] >= 1, label


def test_nightly_copies_match_the_rayjob() -> None:
    rayjob = _find("RayJob", "s2c-compress")
    created = yaml.safe_load(_find("ConfigMap", "s2c-nightly-rayjob")["data"]["rayjob.yaml"])
    assert created["spec"] == rayjob["spec"]
    assert created["metadata"]["generateName"] and "name" not in created["metadata"]
    assert _find("RayCronJob")["spec"]["jobTemplate"] == rayjob["spec"]
    cron = _find("CronJob")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    mount = pod["containers"][0]["volumeMounts"][0]["mountPath"]
    assert pod["containers"][0]["args"] == ["create", "-f", f"{mount}/rayjob.yaml"]


def test_the_cronjob_may_create_rayjobs_and_nothing_else() -> None:
    pod = _find("CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    account = _find("ServiceAccount", pod["serviceAccountName"])
    binding = _find("RoleBinding")
    role = _find("Role", binding["roleRef"]["name"])
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": account["metadata"]["name"],
            "namespace": account["metadata"]["namespace"],
        }
    ]
    assert role["rules"] == [
        {"apiGroups": ["ray.io"], "resources": ["rayjobs"], "verbs": ["create", "get", "list"]}
    ]


def test_the_rayjob_runs_the_job_config_it_mounts() -> None:
    """entrypoint -> /etc/s2c/jobs/KEY -> the ConfigMap key, whose content is jobs/nightly-compress.yaml."""
    rayjob = _find("RayJob", "s2c-compress")
    config_map = _find("ConfigMap", "s2c-job-config")
    entry = shlex.split(rayjob["spec"]["entrypoint"])
    assert entry[:2] == ["python", "/app/jobs/run.py"] and entry[2] == "--config"
    head = rayjob["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    mount = next(m for m in head["containers"][0]["volumeMounts"] if m["name"] == "job-config")
    volume = next(v for v in head["volumes"] if v["name"] == "job-config")
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]
    key = entry[3].removeprefix(mount["mountPath"] + "/")
    mounted = yaml.safe_load(config_map["data"][key])
    assert mounted == yaml.safe_load((REPO / "jobs" / "nightly-compress.yaml").read_text())
    spec = jobspec.parse_job_spec(mounted, source=key)
    assert spec.verb == "compress" and spec.job.require_resources == {"GPU": 2.0}


# ---- Dockerfiles -----------------------------------------------------------------------------------


DOCKERFILES = {"gpu": INFRA / "Dockerfile", "cpu": INFRA / "Dockerfile.cpu"}


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: comments dropped, backslash continuations joined."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        continued = line.endswith("\\")
        pending = " ".join(filter(None, (pending, line.removesuffix("\\").strip())))
        if not continued:
            keyword, _, rest = pending.partition(" ")
            result.append((keyword.upper(), rest.strip()))
            pending = ""
    assert not pending, f"{path}: dangling continuation"
    return result


def _args(path: Path) -> dict[str, str]:
    return dict(arg.split("=", 1) for keyword, arg in instructions(path) if keyword == "ARG" and "=" in arg)


@pytest.mark.parametrize("variant", DOCKERFILES)
def test_dockerfile_critical_lines(variant: str) -> None:
    path = DOCKERFILES[variant]
    steps = instructions(path)
    keywords = [k for k, _ in steps]
    assert set(keywords) <= {"FROM", "ARG", "ENV", "RUN", "USER", "WORKDIR", "COPY", "ENTRYPOINT", "CMD"}
    froms = [a for k, a in steps if k == "FROM"]
    assert len(froms) == 1
    image, _, tag = froms[0].partition(":")
    assert tag and tag != "latest" and "$" not in froms[0], f"base image not pinned: {froms[0]}"
    assert image == {"gpu": "nvidia/cuda", "cpu": "python"}[variant]
    runs = " && ".join(a for k, a in steps if k == "RUN")
    assert re.search(r'pip install --no-deps "compressai==\$\{COMPRESSAI_VERSION\}"', runs)
    assert _args(path)["COMPRESSAI_VERSION"] == "1.2.8"
    cpu_index = "--index-url https://download.pytorch.org/whl/cpu"
    assert (cpu_index in runs) == (variant == "cpu"), "CPU wheel index in the wrong image"
    assert re.search(r'pip install (--index-url \S+ )?"torch==\$\{TORCH_VERSION\}"', runs)
    assert re.search(r"pip install \. \"ray\[default\]==\$\{RAY_VERSION\}\"", runs)
    assert "torchvision" not in runs
    users = [a for k, a in steps if k == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image must not run as root"
    assert keywords.index("USER") < keywords.index("COPY"), "files must be copied after dropping root"
    assert json.loads(dict(steps)["ENTRYPOINT"]) == ["/usr/local/bin/s2c-entrypoint"]
    assert any(
        a.endswith("infra/entrypoint.sh /usr/local/bin/s2c-entrypoint") for k, a in steps if k == "COPY"
    )


def _dockerignore(path: Path) -> list[str]:
    return [
        line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]


def _ignored(relative: str, patterns: list[str]) -> bool:
    """Docker's rules, as far as our file needs them: a path is out when it or a parent folder
    matches; ``**/`` matches at any depth; a later ``!pattern`` takes a path back in."""
    parts = relative.split("/")
    paths = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    out = False
    for raw in patterns:
        pattern = raw.lstrip("!")
        if pattern.startswith("**/"):
            candidates = [
                "/".join(parts[i:j]) for i in range(len(parts)) for j in range(i + 1, len(parts) + 1)
            ]
            pattern = pattern.removeprefix("**/")
        else:
            candidates = paths
        if any(fnmatch(c, pattern) for c in candidates):
            out = not raw.startswith("!")
    return out


@pytest.mark.parametrize("variant", DOCKERFILES)
def test_every_copy_source_exists_and_is_in_the_build_context(variant: str) -> None:
    path = DOCKERFILES[variant]
    ignore = Path(f"{path}.dockerignore")
    assert ignore.read_text() == (INFRA / "Dockerfile.dockerignore").read_text(), (
        "the two ignore files differ"
    )
    patterns = _dockerignore(ignore)
    for keyword, arguments in instructions(path):
        if keyword != "COPY":
            continue
        sources = [a for a in shlex.split(arguments) if not a.startswith("--")][:-1]
        for source in sources:
            assert (REPO / source).exists(), f"{path.name}: COPY {source} does not exist"
            assert not _ignored(source, patterns), f"{path.name}: COPY {source} is excluded by {ignore.name}"
    assert _ignored(".venv", patterns) and _ignored("tests/test_infra.py", patterns)
    assert _ignored("s2c_pipeline/__pycache__/x.pyc", patterns)


def test_versions_agree_across_images_manifests_and_this_ray() -> None:
    """Ray refuses clients of another version; rayVersion must match the image's Ray."""
    for path in DOCKERFILES.values():
        assert _args(path)["RAY_VERSION"] == ray.__version__
        assert (
            _args(path)["TORCH_VERSION"]
            == (REPO / "requirements" / "constraints.txt").read_text().split("torch==")[1].split()[0]
        )
    for label, doc in _manifests():
        if doc["kind"] in KUBERAY_KINDS:
            spec = doc["spec"].get("jobTemplate", doc["spec"])
            assert spec.get("rayClusterSpec", spec)["rayVersion"] == ray.__version__, label
    assert f"assert ray.__version__ == '{ray.__version__}'" in (REPO / "ray_cluster.yaml").read_text()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], "s2c --help"),
        (["compress", "a", "b"], "s2c compress a b"),
        (["--version"], "s2c --version"),
        (["echo", "as", "given"], "as given"),
    ],
)
def test_entrypoint_runs_s2c_verbs_and_passes_commands_through(
    tmp_path: Path, argv: list[str], expected: str
) -> None:
    fake = tmp_path / "s2c"
    fake.write_text('#!/bin/sh\necho "s2c $*"\n')
    fake.chmod(0o755)
    result = subprocess.run(
        ["sh", str(INFRA / "entrypoint.sh"), *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{tmp_path}:/usr/bin:/bin"},
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


# ---- ray_cluster.yaml --------------------------------------------------------------------------------


def _launcher_schema() -> dict:
    return json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())


def _cluster_config() -> dict:
    return yaml.safe_load((REPO / "ray_cluster.yaml").read_text())


def test_ray_cluster_yaml_passes_the_launcher_schema_and_ray_up_checks() -> None:
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = _cluster_config()
    jsonschema.validate(config, _launcher_schema())
    validate_config(prepare_config(copy.deepcopy(config)))  # what `ray up` runs before any AWS call


@pytest.mark.parametrize(
    ("what", "mutate", "fragment"),
    [
        ("a typo at the top", lambda c: c.update(max_worker=c.pop("max_workers")), "max_worker"),
        (
            "min_workers as a string",
            lambda c: c["available_node_types"]["gpu_worker"].update(min_workers="0"),
            "is not of type 'integer'",
        ),
        ("a typo in the docker section", lambda c: c["docker"].update(worker_imag="x"), "worker_imag"),
        (
            "a fractional GPU count",
            lambda c: c["available_node_types"]["gpu_worker"]["resources"].update(GPU=0.5),
            "is not of type 'integer'",
        ),
    ],
)
def test_the_launcher_schema_rejects_a_broken_config(what: str, mutate, fragment: str) -> None:
    config = _cluster_config()
    mutate(config)
    with pytest.raises(jsonschema.ValidationError, match=re.escape(fragment)):
        jsonschema.validate(config, _launcher_schema())


def test_ray_cluster_yaml_has_gpu_workers_images_and_no_keys() -> None:
    config = _cluster_config()
    head = config["available_node_types"][config["head_node_type"]]
    worker = config["available_node_types"]["gpu_worker"]
    assert head["resources"].get("GPU", 0) == 0 and worker["resources"]["GPU"] == 1
    assert worker["node_config"]["InstanceType"].startswith("g5.")
    assert 0 <= worker["min_workers"] < worker["max_workers"] <= config["max_workers"]
    assert config["docker"]["head_image"].endswith("s2c-pipeline:0.1.0-cpu")
    assert config["docker"]["worker_image"].endswith("s2c-pipeline:0.1.0-gpu")
    for node_type in config["available_node_types"].values():
        assert node_type["node_config"]["IamInstanceProfile"]["Arn"].startswith("arn:aws:iam::")
    text = (REPO / "ray_cluster.yaml").read_text()
    assert "AWS_SECRET_ACCESS_KEY" not in text and "AWS_ACCESS_KEY_ID" not in text
