"""``s2c`` as users expect a command to behave (issue 20): quick to start, one-line errors with the
right exit code, ``-`` for stdin/stdout, ``-q``/``-v`` on every verb, progress bars only on a
terminal, lossless output formats by extension, clean logs from a local Ray, help that agrees with
the README and the committed results."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pipeline_fixtures import image_bytes, write_shard

from s2c_pipeline.bitstream import MAGIC
from s2c_pipeline.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "tests" / "vectors"
RGB_STREAM = VECTORS / "s2c-conv-small-ad47568a853be580-rgb-q2.5.s2c"  # bundled weights decode these
ALPHA_STREAM = VECTORS / "s2c-conv-small-ad47568a853be580-alpha-q4.s2c"
HEAVY = ("torch", "compressai", "ray")


def s2c(*argv: object, stdin: bytes | None = None, cwd: Path | None = None, timeout: float = 300):
    """``python -m s2c_pipeline ARGV`` with pipes (not a terminal) on every stream; bytes out."""
    return subprocess.run(
        [sys.executable, "-m", "s2c_pipeline", *map(str, argv)],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        timeout=timeout,
    )


def one_line(stderr: str | bytes) -> str:
    text = stderr.decode() if isinstance(stderr, bytes) else stderr
    assert "Traceback" not in text, text
    assert text.strip().count("\n") == 0, text
    return text.strip()


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("photo") / "photo.png"
    path.write_bytes(image_bytes(48, 64, 3))
    return path


# -- startup -------------------------------------------------------------------------------------

PROBE = """
import json, sys
from s2c_pipeline.cli.main import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
loaded = [m for m in ("torch", "compressai", "ray", "numpy", "PIL", "fsspec", "pyarrow") if m in sys.modules]
print("PROBE " + json.dumps({"code": code, "loaded": loaded}), file=sys.stderr)
"""


def _probe(*argv: object) -> dict:
    run = subprocess.run(
        [sys.executable, "-c", PROBE, *map(str, argv)], capture_output=True, text=True, timeout=300
    )
    line = [x for x in run.stderr.splitlines() if x.startswith("PROBE ")]
    assert line, run.stderr[-3000:]
    return json.loads(line[-1][len("PROBE ") :])


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["--version"], ["info", RGB_STREAM], ["info", "--help"], ["encode", "--help"]],
    ids=["help", "version", "info", "info-help", "encode-help"],
)
def test_help_version_and_info_start_without_torch_compressai_or_ray(argv: list) -> None:
    result = _probe(*argv)
    assert result["code"] in (0, None)
    assert not set(HEAVY) & set(result["loaded"]), (
        f"s2c {' '.join(map(str, argv))} imported {result['loaded']}"
    )


def test_models_starts_without_torch_and_its_counts_are_the_models_own() -> None:
    """``models`` reads the parameter counts from ``codec/weights/zoo.json``; they must be what the
    models themselves count, so the file cannot go stale unseen."""
    from s2c_pipeline.catalogue import count_parameters, describe_models

    result = _probe("models", "--json")
    assert result["code"] == 0
    assert not set(HEAVY) & set(result["loaded"]), f"s2c models imported {result['loaded']}"
    counts = count_parameters()
    assert {row["name"]: row["params"] for row in describe_models()} == counts
    assert [row["name"] for row in describe_models() if row["default"]] == ["s2c-conv-small"]


# -- help, README and the committed results agree ------------------------------------------------


def test_help_and_readme_list_the_same_verbs() -> None:
    run = s2c("--help")
    assert run.returncode == 0
    listed = set(re.findall(r"^ {4}([a-z]+)\s", run.stdout.decode(), re.MULTILINE))
    assert {"encode", "decode", "info", "models", "compress", "demo"} <= listed
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"(?:^|[\s`(])s2c ([a-z]+)\b", readme, re.MULTILINE))
    assert listed - documented == set(), "verbs s2c --help lists that the README never shows"
    assert documented - listed == set(), "verbs the README shows that s2c does not have"


def test_refine_help_gives_the_figure_of_the_committed_results(capsys) -> None:
    # the refinement figure was measured on the 8 photos of the evaluation set before issue 18
    record = json.loads((ROOT / "benchmarks" / "results" / "eval-8photos.json").read_text())
    (entry,) = [
        e
        for e in record["bd_rate"]
        if e["test"] == "s2c-conv-small+refine30"
        and e["anchor"] == "s2c-conv-small"
        and e["metric"] == "psnr"
    ]
    figure = f"{-entry['mean_curve']['value_pct']:.1f} %"
    assert figure == "1.1 %"
    with pytest.raises(SystemExit):
        main(["encode", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"fewer bits for the same PSNR, {figure} on the earlier 8 evaluation photos" in help_text
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert f"fewer bits at the same PSNR ({figure} on the earlier 8 evaluation photos" in readme


def test_max_pixels_help_states_the_library_default(capsys) -> None:
    from s2c_pipeline.imaging import DEFAULT_MAX_PIXELS

    with pytest.raises(SystemExit):
        main(["decode", "--help"])
    assert f"{DEFAULT_MAX_PIXELS / 1e6:g} million" in " ".join(capsys.readouterr().out.split())


def test_a_stream_for_other_weights_names_a_function_that_exists() -> None:
    from s2c_pipeline.bitstream import BitstreamError
    from s2c_pipeline.codec import image_codec

    codec = image_codec.ImageCodec.load(device="cpu")  # the default weights, not the stream's
    with pytest.raises(BitstreamError) as raised:
        codec.decode(RGB_STREAM.read_bytes(), source="rgb.s2c")
    message = str(raised.value)
    assert "codec_for_bitstream" in message and hasattr(image_codec, "codec_for_bitstream")
    assert "ImageCodec.for_bitstream" not in message
    assert "--weights" in message


# -- one-line errors and their exit codes ---------------------------------------------------------


def test_an_unwritable_output_fails_before_any_coding(tmp_path: Path, photo: Path) -> None:
    # 100000 refinement steps would take hours: the error has to come before them
    run = s2c("encode", photo, "/nonexistent/dir/a.s2c", "--refine-steps", "100000", timeout=120)
    assert run.returncode == 1
    assert "/nonexistent/dir" in one_line(run.stderr)
    folder = tmp_path / "out"
    folder.mkdir()
    run = s2c("encode", photo, folder, "--refine-steps", "100000", timeout=120)
    assert run.returncode == 1
    assert "is a directory" in one_line(run.stderr)
    assert list(folder.iterdir()) == []


def test_a_device_torch_cannot_use_is_a_usage_error(tmp_path: Path, photo: Path, capsys) -> None:
    import torch

    devices = ["tpu0", "cuda:99"] + ([] if torch.cuda.is_available() else ["cuda"])
    for device in devices:
        assert main(["encode", str(photo), str(tmp_path / "a.s2c"), "--device", device]) == 2
        assert f"--device {device}" in one_line(capsys.readouterr().err)
        assert main(["decode", str(RGB_STREAM), str(tmp_path / "a.png"), "--device", device]) == 2
        assert f"--device {device}" in one_line(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []


def test_only_usage_errors_exit_2(tmp_path: Path, capsys) -> None:
    from s2c_pipeline.archive.layout import OutputLayout
    from s2c_pipeline.archive.manifest import write_manifest

    shard = write_shard(tmp_path / "in" / "00000.tar", [("a.png", image_bytes(8, 8, 1))])
    assert main(["compress", str(shard), str(tmp_path / "out"), "--max-attempts", "0"]) == 2
    assert "max_attempts" in one_line(capsys.readouterr().err)
    # a damaged prefix is bad data found deep inside decompress (a ValueError there), not bad usage
    layout = OutputLayout.of(str(tmp_path / "damaged"))
    write_manifest([], layout.manifest("00000"))
    Path(layout.marker("00000")).parent.mkdir(parents=True)
    Path(layout.marker("00000")).write_text(json.dumps({"rows": 3}))
    assert main(["decompress", layout.prefix, str(tmp_path / "png")]) == 1
    assert "markers count 3" in one_line(capsys.readouterr().err)


# -- stdin and stdout ------------------------------------------------------------------------------


def test_dash_reads_stdin_and_writes_stdout(tmp_path: Path, photo: Path) -> None:
    encoded = s2c("encode", "-", "-", "--quality", "2", stdin=photo.read_bytes(), cwd=tmp_path)
    assert encoded.returncode == 0, encoded.stderr.decode()
    assert encoded.stdout.startswith(MAGIC)
    assert b"bpp" in encoded.stderr  # the statistics go to stderr when stdout carries the stream
    decoded = s2c("decode", "-", "-", stdin=encoded.stdout, cwd=tmp_path)
    assert decoded.returncode == 0, decoded.stderr.decode()
    image = Image.open(__import__("io").BytesIO(decoded.stdout))
    assert image.format == "PNG" and image.size == (64, 48)
    assert b"48" in decoded.stderr and b"64" in decoded.stderr
    assert list(tmp_path.iterdir()) == []  # no file named "-"


# -- -q and -v ---------------------------------------------------------------------------------------


def test_quiet_and_verbose_go_before_or_after_every_verb(capsys) -> None:
    parser = build_parser()
    verbs = parser._subparsers._group_actions[0].choices
    for verb in verbs:
        with pytest.raises(SystemExit):
            main([verb, "--help"])
        help_text = capsys.readouterr().out
        assert "-q, --quiet" in help_text and "-v, --verbose" in help_text, verb
    for argv in (["-v", "info", "x.s2c"], ["info", "x.s2c", "-v"]):
        args = build_parser().parse_args(argv)
        assert args.verbose and not args.quiet
    args = build_parser().parse_args(["info", "-q", "x.s2c"])
    assert args.quiet and not args.verbose
    assert main(["-v", "info", str(RGB_STREAM), "-q"]) == 2
    assert "-q" in one_line(capsys.readouterr().err)


def test_quiet_encode_and_decode_print_nothing(tmp_path: Path, photo: Path, capsys) -> None:
    assert main(["encode", str(photo), str(tmp_path / "a.s2c"), "-q"]) == 0
    assert main(["decode", "-q", str(tmp_path / "a.s2c"), str(tmp_path / "a.png")]) == 0
    assert capsys.readouterr() == ("", "")
    assert Image.open(tmp_path / "a.png").size == (64, 48)


# -- progress bars only on a terminal ---------------------------------------------------------------


def _stderr_on_a_terminal(*argv: object, cwd: Path) -> tuple[int, str]:
    """Run s2c with stderr on a pseudo-terminal; returns (exit code, what it wrote there)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # tqdm sizes bars to it
    process = subprocess.Popen(
        [sys.executable, "-m", "s2c_pipeline", *map(str, argv)],
        stdout=subprocess.DEVNULL,
        stderr=slave,
        cwd=cwd,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return process.wait(timeout=300), b"".join(chunks).decode(errors="replace")


def test_a_refined_encode_shows_a_bar_on_a_terminal_and_none_in_a_pipe(tmp_path: Path, photo: Path) -> None:
    argv = ["encode", photo, tmp_path / "a.s2c", "--quality", "2", "--refine-steps", "3"]
    code, terminal = _stderr_on_a_terminal(*argv, cwd=tmp_path)
    assert code == 0, terminal
    assert "refine" in terminal and "/3" in terminal and "\r" in terminal
    piped = s2c(*argv, cwd=tmp_path)
    assert piped.returncode == 0
    assert piped.stderr == b""  # neither a bar nor anything else


# -- decode: the output format from the extension ----------------------------------------------------


@pytest.mark.parametrize(
    ("stream", "extensions"),
    [(RGB_STREAM, (".webp", ".tif", ".tiff", ".ppm")), (ALPHA_STREAM, (".webp", ".tiff"))],
    ids=["rgb", "alpha"],
)
def test_decode_writes_lossless_formats_by_extension(
    tmp_path: Path, stream: Path, extensions, capsys
) -> None:
    assert main(["decode", str(stream), str(tmp_path / "ref.png")]) == 0
    reference = Image.open(tmp_path / "ref.png")
    expected = {".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF", ".ppm": "PPM"}
    for extension in extensions:
        out = tmp_path / f"out{extension}"
        assert main(["decode", str(stream), str(out)]) == 0, capsys.readouterr().err
        decoded = Image.open(out)
        assert decoded.format == expected[extension] and decoded.mode == reference.mode
        same = np.array_equal(np.asarray(decoded), np.asarray(reference))  # every sample, alpha too
        assert same, extension


def test_decode_refuses_a_format_that_would_lose_data_before_decoding(tmp_path: Path, capsys) -> None:
    assert main(["decode", str(RGB_STREAM), str(tmp_path / "a.jpg")]) == 2
    message = one_line(capsys.readouterr().err)
    assert ".jpg" in message and ".png" in message and ".webp" in message
    assert main(["decode", str(ALPHA_STREAM), str(tmp_path / "a.ppm")]) == 2
    assert "alpha" in one_line(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []


# -- a local Ray run's log ------------------------------------------------------------------------


@pytest.mark.slow
def test_a_local_ray_run_logs_cleanly_when_not_on_a_terminal(tmp_path: Path) -> None:
    shard = write_shard(
        tmp_path / "in" / "00000.tar", [("a.png", image_bytes(16, 16, 1)), ("b.jpg", b"not a jpeg")]
    )
    run = s2c("-v", "compress", shard, tmp_path / "out", "--actors", "1", cwd=tmp_path, timeout=600)
    log = run.stderr.decode(errors="replace")
    assert run.returncode == 0, log[-3000:]
    # The driver's own lines are all there (an actor's warnings are forwarded by Ray's log monitor
    # asynchronously, so whether they arrive before the driver exits is not something to assert).
    assert "1 ok, 1 failed" in log
    assert "\x1b[" not in log  # no ANSI colour codes
    assert "Token authentication" not in log
    assert "\r" not in log  # no progress bar
    assert re.search(r"dashboard.*http://127\.0\.0\.1:\d+", log), log[-3000:]
