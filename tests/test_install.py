"""The install paths the README gives: `pip check`, the Makefile venv, and the wheel installed offline.

compressai is installed with ``--no-deps`` (README, "Installing by hand, and on GPU machines"), so
pip cannot vouch for the environment by itself: these tests check that what `pip check` still
reports is what the README explains, and that the wheel with the README's GPU commands gives a
working ``s2c`` in a fresh venv that holds only what the wheel's requirements bring from the
Makefile venv, offline.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
COMPRESSAI_REQUIREMENTS = ROOT / "requirements" / "compressai.txt"
PACKAGE = "s2c_pipeline"


def _install_section() -> str:
    text = README.read_text()
    start = text.index("## Installing by hand, and on GPU machines")
    return text[start : text.index("\n## ", start + 1)]


def _block_after(marker: str) -> list[str]:
    """The lines of the first fenced block after ``marker`` in the README's install section."""
    section = _install_section()
    after = section[section.index(marker) :]
    match = re.search(r"```[a-z]*\n(.*?)```", after, re.DOTALL)
    assert match, f"README: no code block after {marker!r}"
    return [line for line in match.group(1).splitlines() if line.strip()]


def _commands_after(marker: str) -> list[list[str]]:
    return [words for line in _block_after(marker) if (words := shlex.split(line, comments=True))]


def _normalised(line: str) -> str:
    """A `pip check` line without the installed version that it ends with, which varies."""
    return re.sub(r"(, but you have \S+) \S+\.$", r"\1 <any>.", line.strip())


def _unexplained(pip_check_output: str) -> list[str]:
    explained = {_normalised(line) for line in _block_after("`pip check` prints at most")}
    explained.add("No broken requirements found.")
    return [line for line in pip_check_output.splitlines() if line and _normalised(line) not in explained]


def _pip_check(python: Path | str, cwd: Path, env: dict[str, str] | None = None) -> str:
    # From outside the checkout: `python -m` puts the working directory on sys.path, and a stale
    # s2c_pipeline.egg-info there would be checked as if installed.
    result = subprocess.run(
        [str(python), "-m", "pip", "check"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout


def test_pip_check_in_this_environment_reports_only_what_the_readme_explains(tmp_path: Path) -> None:
    unexplained = _unexplained(_pip_check(sys.executable, tmp_path))
    assert not unexplained, (
        "pip check reports conflicts that README.md (Installing by hand) does not explain:\n"
        + "\n".join(unexplained)
    )


def test_readme_gives_the_makefile_venv_recipe() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^\$\(STAMP\):.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe, "Makefile: no $(STAMP) recipe"
    names = {"$(PYTHON)": "python3", "$(VENV)": ".venv", "$(PIP)": ".venv/bin/pip"}
    commands = []
    for line in recipe.group(1).splitlines():
        for variable, value in names.items():
            line = line.replace(variable, value)
        words = [w for w in shlex.split(line) if w != "-q"]
        if words[0] != "touch":
            commands.append(words)
    assert commands == _commands_after("The Makefile does exactly this")


# ---- the wheel, installed offline with the README's GPU commands ------------------------------------


_PIP_WHEEL = (sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index")


def _build_wheel(tmp_path: Path) -> Path:
    """The project's wheel, built from a copy (an in-tree build would leave build/ in the checkout)."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / PACKAGE, source / PACKAGE, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path / "wheelhouse"
    subprocess.run(
        [*_PIP_WHEEL, "-w", str(out), str(source)],
        check=True,
        env=_offline_env(),
        timeout=300,
    )
    (wheel,) = out.glob("s2c_pipeline-*.whl")
    return wheel


def _package_files() -> set[str]:
    return {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / PACKAGE).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def _requirement_names(path: Path) -> set[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return {canonicalize_name(Requirement(line).name) for line in lines if line}


def _repack(dist: importlib.metadata.Distribution, out: Path) -> Path:
    """A wheel of the files an installed distribution recorded (pip cannot wheel an installed one).

    Scripts and headers outside site-packages are left out: pip writes entry points again.
    """
    files = [
        f
        for f in dist.files or []
        if f.parts[0] != ".."
        and "__pycache__" not in f.parts
        and f.name not in {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
    ]
    dist_info = next(f.parts[0] for f in files if f.parts[0].endswith(".dist-info"))
    tag = next(
        line.split(":", 1)[1].strip()
        for line in (dist.read_text("WHEEL") or "").splitlines()
        if line.startswith("Tag:")
    )
    name = re.sub(r"[-_.]+", "_", dist.metadata["Name"]).lower()
    wheel = out / f"{name}-{dist.version}-{tag}.whl"
    record = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for f in files:
            data = Path(str(dist.locate_file(f))).read_bytes()
            archive.writestr(f.as_posix(), data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{f.as_posix()},sha256={digest},{len(data)}")
        record.append(f"{dist_info}/RECORD,,")
        archive.writestr(f"{dist_info}/RECORD", "\n".join(record) + "\n")
    return wheel


def _needed(requirements: list[Requirement]) -> set[str]:
    """The installed distributions that ``requirements`` need, transitively (what pip would bring)."""
    extras_seen: dict[str, set[str]] = {}
    todo = [(requirement, "") for requirement in requirements]  # with the extra that listed it
    while todo:
        requirement, extra = todo.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        new = {"", *requirement.extras} - extras_seen.setdefault(name, set())
        extras_seen[name] |= new
        if new:
            try:
                lines = importlib.metadata.distribution(name).requires or []
            except importlib.metadata.PackageNotFoundError:
                pytest.fail(f"{requirement}: required (via the wheel) but not installed in this environment")
            todo += [(Requirement(line), e) for line in lines for e in new]
    return set(extras_seen)


def _site_packages_of(names: set[str], farm: Path) -> Path:
    """A folder of links to the named distributions' files in this environment's site-packages."""
    site = Path(sysconfig.get_paths()["purelib"])
    entries: set[str] = set()
    for dist in importlib.metadata.distributions(path=[str(site)]):
        if canonicalize_name(dist.metadata["Name"]) in names:
            entries |= {f.parts[0] for f in dist.files or [] if f.parts[0] not in {"..", "__pycache__"}}
    farm.mkdir()
    for entry in sorted(entries):
        (farm / entry).symlink_to(site / entry)
    return farm


def _offline_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") and k != "PYTHONPATH"}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    return env


def _readme_gpu_commands(wheel: Path) -> list[list[str]]:
    """The README's GPU commands, `.` (this checkout) replaced by its wheel, paths made absolute."""
    commands = []
    for words in _commands_after("**GPU machine**"):
        assert words[:2] == ["pip", "install"], f"README GPU block: not a pip install: {shlex.join(words)}"
        args = []
        for word in words[2:]:
            if word == "." or word.startswith(".["):
                word = str(wheel) + word[1:]
            elif not word.startswith("-") and (ROOT / word).exists():
                word = str(ROOT / word)
            args.append(word)
        commands.append(args)
    return commands


def _machine(tmp_path: Path, requires: list[Requirement]) -> Path:
    """A fresh venv that sees what ``requires`` bring from this environment, and pip; its python.

    It stands for a GPU machine after a plain `pip install .`, before compressai (this
    environment's CPU torch stands for a CUDA one).
    """
    farm = _site_packages_of(_needed([*requires, Requirement("pip")]), tmp_path / "site")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path)
    Path(purelib.strip(), "_machine_site.pth").write_text(f"import site; site.addsitedir({str(farm)!r})\n")
    return python


def _run(command: list[str | Path], cwd: Path) -> str:
    result = subprocess.run(
        [str(word) for word in command],
        cwd=cwd,
        env=_offline_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{shlex.join(map(str, command))}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.mark.slow
def test_wheel_installs_offline_with_the_readme_gpu_commands_and_runs(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    wheelhouse, version = wheel.parent, wheel.name.split("-")[1]
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
        metadata = archive.read(f"s2c_pipeline-{version}.dist-info/METADATA").decode()
    assert not _package_files() - shipped, f"not in the wheel: {sorted(_package_files() - shipped)}"
    requires = [
        Requirement(line[len("Requires-Dist:") :])
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:")
    ]
    assert not {canonicalize_name(r.name) for r in requires} & {"torchvision", "compressai"}, (
        "a plain `pip install` must not pull torchvision (compressai requires it)"
    )
    for name in sorted(_requirement_names(COMPRESSAI_REQUIREMENTS)):
        _repack(importlib.metadata.distribution(name), wheelhouse)

    python = _machine(tmp_path, requires)
    work = tmp_path / "work"  # outside the checkout, so that nothing imports the source tree
    work.mkdir()
    for args in _readme_gpu_commands(wheel):
        _run([python, "-m", "pip", "install", "-q", "--no-index", "--find-links", wheelhouse, *args], work)
    unexplained = _unexplained(_pip_check(python, work, _offline_env()))
    assert not unexplained, "pip check after the README's GPU commands:\n" + "\n".join(unexplained)

    where = _run([python, "-c", "import s2c_pipeline; print(s2c_pipeline.__file__)"], work).strip()
    assert Path(where).is_relative_to(python.parents[1]), where
    s2c = python.parent / "s2c"
    assert _run([s2c, "--version"], work).split() == ["s2c-pipeline", version]
    y, x = np.mgrid[0:96, 0:128]
    original = np.stack([x * 2, y * 2, x + y], axis=-1).astype(np.uint8)
    Image.fromarray(original).save(work / "in.png")
    _run([s2c, "encode", "in.png", "in.s2c"], work)
    _run([s2c, "decode", "in.s2c", "out.png"], work)
    with Image.open(work / "out.png") as image:
        decoded = np.asarray(image.convert("RGB"))
    assert decoded.shape == original.shape
    mse = np.mean((decoded.astype(np.float64) - original) ** 2)
    assert 10 * np.log10(255**2 / mse) > 30
