"""Download Debian packages and unpack them into a cache, without installing anything.

``apt-get download`` fetches the ``.deb`` of the candidate version into the current folder and
``dpkg -x`` unpacks its file tree; neither touches the system's package state. Both are skipped when
their output is already in the cache, so a second run is offline.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


class AptError(RuntimeError):
    """A package could not be downloaded or unpacked; the message says what to do."""


@dataclass(frozen=True)
class UnpackedPackage:
    """A ``.deb`` and the folder its file tree was unpacked into."""

    name: str
    version: str
    deb: Path
    root: Path


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    log.debug("running %s", " ".join(cmd))
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)


def _require(tool: str) -> None:
    if shutil.which(tool) is None:
        raise AptError(
            f"{tool} not found: fetching training photos needs a Debian or Ubuntu machine with apt "
            "(the photos come from Debian bookworm packages)"
        )


class PackageFetcher:
    """Downloads and unpacks packages under ``cache`` (``cache/debs``, ``cache/debian``).

    Runs ``apt-get update`` at most once, and only when a download fails, since the package
    lists are usually present already.
    """

    def __init__(self, cache: Path) -> None:
        _require("apt-get")
        _require("dpkg")
        self.debs = Path(cache) / "debs"
        self.unpacked = Path(cache) / "debian"
        self.debs.mkdir(parents=True, exist_ok=True)
        self.unpacked.mkdir(parents=True, exist_ok=True)
        self._updated = False

    def fetch(self, name: str) -> UnpackedPackage:
        deb = self._download(name)
        version = self._field(deb, "Version")
        root = self.unpacked / f"{name}_{version.replace(':', '%3a')}"
        marker = root / ".unpacked"
        if not marker.exists():
            shutil.rmtree(root, ignore_errors=True)
            result = _run(["dpkg", "-x", str(deb), str(root)])
            if result.returncode != 0:
                raise AptError(f"dpkg -x {deb} failed: {result.stderr.strip()[-500:]}")
            marker.touch()
        return UnpackedPackage(name=name, version=version, deb=deb, root=root)

    def _download(self, name: str) -> Path:
        cached = sorted(self.debs.glob(f"{name}_*.deb"))
        if cached:
            return cached[-1]
        result = _run(["apt-get", "download", name], cwd=self.debs)
        if result.returncode != 0 and not self._updated:
            log.info("apt-get download %s failed; running apt-get update once and retrying", name)
            self._updated = True
            update = _run(["apt-get", "update"])
            if update.returncode != 0:
                raise AptError(
                    f"apt-get update failed ({update.stderr.strip()[-300:]}); run it as root, "
                    "then run this command again"
                )
            result = _run(["apt-get", "download", name], cwd=self.debs)
        if result.returncode != 0:
            raise AptError(
                f"apt-get download {name} failed: {result.stderr.strip()[-500:]}. The package must be "
                "in the apt sources (Debian bookworm main)."
            )
        cached = sorted(self.debs.glob(f"{name}_*.deb"))
        if not cached:
            raise AptError(f"apt-get download {name} succeeded but left no {name}_*.deb in {self.debs}")
        return cached[-1]

    @staticmethod
    def _field(deb: Path, field: str) -> str:
        result = _run(["dpkg-deb", "-f", str(deb), field])
        if result.returncode != 0:
            raise AptError(f"{deb} is not a readable .deb ({result.stderr.strip()}); delete it and rerun")
        return result.stdout.strip()
