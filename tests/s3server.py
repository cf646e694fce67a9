"""S3 servers on 127.0.0.1 for the tests: a real one (SeaweedFS ``weed mini``, access keys enforced)
and moto with a fault injector that breaks chosen GET responses mid-body."""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import json
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import s3fs
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from s2c_pipeline.shards.storage import STORAGE_ERRORS

logger = logging.getLogger(__name__)

GRPC_OFFSET = 10000  # weed serves gRPC on every HTTP port + 10000
_bucket_numbers = itertools.count()


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports p, each with p and p + 10000 free on 127.0.0.1."""
    ports: list[int] = []
    candidates = random.Random(os.getpid()).sample(range(20000, 55000), 4000)
    for port in candidates:
        if all(abs(port - taken) not in (0, GRPC_OFFSET) for taken in ports) and all(
            _port_is_free(p) for p in (port, port + GRPC_OFFSET)
        ):
            ports.append(port)
            if len(ports) == count:
                return ports
    raise RuntimeError(f"found only {len(ports)} of {count} free port pairs on 127.0.0.1")


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when the test process dies (Linux prctl)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class S3Endpoint:
    """What a test needs to talk to a server: endpoint, credentials, s3fs storage options."""

    endpoint: str
    key: str
    secret: str

    @property
    def storage_options(self) -> dict:
        return {
            "key": self.key,
            "secret": self.secret,
            "client_kwargs": {"endpoint_url": self.endpoint, "region_name": "us-east-1"},
        }

    def filesystem(self) -> s3fs.S3FileSystem:
        return s3fs.S3FileSystem(skip_instance_cache=True, **self.storage_options)

    def make_bucket(self, prefix: str = "test") -> str:
        """Create a fresh, empty bucket and return its name."""
        name = f"{prefix}-{next(_bucket_numbers)}-{uuid.uuid4().hex[:8]}"
        # A plain CreateBucket: s3fs's mkdir sends LocationConstraint=us-east-1, which moto (like AWS) refuses.
        self.filesystem().call_s3("create_bucket", Bucket=name)
        return name


class WeedS3Server(S3Endpoint):
    """``weed mini`` from the virtualenv with one identity; every port explicit and on loopback."""

    def __init__(self, workdir: Path, key: str = "s2c-test-key", secret: str = "s2c-test-secret") -> None:
        master, volume, filer, s3, admin = free_ports(5)
        super().__init__(endpoint=f"http://127.0.0.1:{s3}", key=key, secret=secret)
        self.s3_port = s3
        self.workdir = workdir
        self.log_path = workdir / "weed.log"
        identities = {
            "identities": [
                {
                    "name": "test",
                    "credentials": [{"accessKey": key, "secretKey": secret}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        (workdir / "s3.json").write_text(json.dumps(identities))
        (workdir / "data").mkdir(exist_ok=True)
        self.command = [
            str(Path(sys.executable).parent / "weed"),
            "mini",
            f"-dir={workdir / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.port={s3}",
            f"-s3.config={workdir / 's3.json'}",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-master.port={master}",
            f"-volume.port={volume}",
            f"-filer.port={filer}",
            f"-admin.port={admin}",
            f"-s3.localSocket={workdir / 's3.sock'}",
            f"-filer.localSocket={workdir / 'filer.sock'}",
            "-master.telemetry=false",
        ]
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 60.0) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + timeout_s
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed mini exited with {self.process.returncode}:\n{self._log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.s3_port), timeout=1):
                    pass
                self.filesystem().ls("")  # answers only once S3, filer and identities are all up
                logger.info("weed mini S3 ready at %s (pid %d)", self.endpoint, self.process.pid)
                return
            except STORAGE_ERRORS as exc:
                last_error = exc
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(
            f"weed mini did not answer within {timeout_s} s ({last_error}):\n{self._log_tail()}"
        )

    def stop(self, timeout_s: float = 20.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            logger.warning(
                "weed mini (pid %d) ignored SIGTERM for %s s; killing it", self.process.pid, timeout_s
            )
            self.process.kill()
            self.process.wait()

    def _log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else "(no log)"


@dataclass
class _GetFault:
    key_suffix: str
    first: int  # 1-based number of the first GET (of matching keys) to break
    count: int
    mode: str  # "reset": half the body, then the connection is cut; "503": an S3 InternalError
    seen: int = 0


@dataclass
class FaultInjector:
    """WSGI middleware in front of moto: logs requests, and breaks the GETs a test asks it to."""

    app: object
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)  # (method, path, Range)
    fault: _GetFault | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ, start_response):
        method, path, byte_range = environ["REQUEST_METHOD"], environ["PATH_INFO"], environ.get("HTTP_RANGE")
        with self.lock:
            self.requests.append((method, path, byte_range))
            fault = self.fault
            broken = False
            if fault and method == "GET" and path.endswith(fault.key_suffix):
                fault.seen += 1
                broken = fault.first <= fault.seen < fault.first + fault.count
        if not broken:
            return self.app(environ, start_response)
        if fault.mode == "503":
            body = (
                b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code>'
                b"<Message>injected failure</Message></Error>"
            )
            start_response(
                "500 Internal Server Error",
                [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
            )
            return [body]
        captured: dict = {}

        def capture(status, headers, exc_info=None):
            captured.update(status=status, headers=headers)
            return lambda data: None

        full = b"".join(self.app(environ, capture))
        start_response(captured["status"], captured["headers"])
        return _cut_short(full, environ["werkzeug.socket"])


def _cut_short(body: bytes, connection: socket.socket):
    """Send half the promised body, then cut the TCP connection (what a mid-transfer reset looks like)."""
    yield body[: len(body) // 2]
    connection.shutdown(socket.SHUT_RDWR)
    raise ConnectionResetError("fault injector cut the connection")


class FlakyMotoServer(ThreadedMotoServer):
    """moto's threaded server with a :class:`FaultInjector` in front (no credentials checked)."""

    def __init__(self) -> None:
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self.injector = FaultInjector(DomainDispatcherApplication(create_backend_app))

    def _server_entry(self) -> None:
        self._server = make_server(
            self._ip_address, self._port, self.injector, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()

    def endpoint(self) -> S3Endpoint:
        host, port = self.get_host_and_port()
        return S3Endpoint(endpoint=f"http://{host}:{port}", key="testing", secret="testing")

    def fail_gets(self, key_suffix: str, *, first: int, count: int, mode: str = "reset") -> None:
        """Break GETs number ``first`` .. ``first + count - 1`` of keys ending in ``key_suffix``."""
        with self.injector.lock:
            self.injector.fault = _GetFault(key_suffix, first, count, mode)

    def reset_faults(self) -> None:
        with self.injector.lock:
            self.injector.fault = None
            self.injector.requests.clear()

    def gets(self, key_suffix: str) -> list[str | None]:
        """Range headers of the GETs seen so far for keys ending in ``key_suffix``, in order."""
        with self.injector.lock:
            return [r for m, p, r in self.injector.requests if m == "GET" and p.endswith(key_suffix)]
