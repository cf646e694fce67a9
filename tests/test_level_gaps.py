"""benchmarks/level_gaps.py: the per-level rate gap behind the per-level figures in docs/weights.md."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "level_gaps.py"


def load_module():
    spec = importlib.util.spec_from_file_location("level_gaps", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_anchor_rate_is_interpolated_in_log_rate_and_points_outside_get_none():
    curves = {
        "webp": [{"psnr": 32.0, "bpp": 4.0}, {"psnr": 30.0, "bpp": 1.0}],
        "ours": [{"setting": 1, "psnr": 31.0, "bpp": 1.0}, {"setting": 2, "psnr": 32.0, "bpp": 5.0},
                 {"setting": 3, "psnr": 33.0, "bpp": 6.0}],
    }
    rows = load_module().level_gaps(curves, "ours", "webp")
    assert rows[0]["anchor_bpp"] == pytest.approx(2.0) and rows[0]["rate_gap_pct"] == pytest.approx(-50.0)
    assert rows[1]["rate_gap_pct"] == pytest.approx(25.0)
    assert "rate_gap_pct" not in rows[2]


def test_the_command_reads_an_eval_json_and_names_missing_curves(tmp_path):
    source = tmp_path / "eval.json"
    source.write_text(json.dumps({
        "codecs": [{"name": "webp", "kind": "classical"}, {"name": "ours", "kind": "learned"}],
        "mean_curves": {"webp": [{"psnr": 30.0, "bpp": 1.0}, {"psnr": 32.0, "bpp": 4.0}],
                        "ours": [{"setting": 4.5, "psnr": 31.0, "bpp": 3.0}]},
    }))
    out = tmp_path / "gaps.json"
    r = subprocess.run([sys.executable, SCRIPT, source, "--json", out], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "+50.0 %" in r.stdout
    assert json.loads(out.read_text())["levels"][0]["rate_gap_pct"] == pytest.approx(50.0)
    r = subprocess.run([sys.executable, SCRIPT, source, "--anchor", "avif"], capture_output=True, text=True)
    assert r.returncode != 0 and "has no curve 'avif'; it has: webp, ours" in r.stderr
