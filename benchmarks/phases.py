"""Run one phase of a benchmark in a fresh Python process and return what it measured.

Start-up costs (model loads, ``ray.init``) and memory (peak RSS) are only honest in a process of
their own. ``run_phase("bench_build", "in_process", 256, 16, "yunet")`` imports
``benchmarks/bench_build.py`` in a child process, calls ``phase_in_process(256, 16, "yunet")``
there and returns the dict that call returned (JSON through the child's stdout).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULT = "RESULT "


def run_phase(module: str, phase: str, *args: object) -> dict:
    """``module.phase_<phase>(*args)`` in a fresh interpreter; RuntimeError with its stderr."""
    code = (
        f"import json, sys; sys.path.insert(0, {str(HERE)!r}); import {module} as bench; "
        f"print({RESULT!r} + json.dumps(bench.phase_{phase}(*{list(args)!r})))"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    for line in done.stdout.splitlines():
        if line.startswith(RESULT):
            return json.loads(line.removeprefix(RESULT))
    raise RuntimeError(f"{module} phase {phase} failed:\n{done.stderr[-3000:]}")


def save_report(out: Path, name: str, report: dict) -> Path:
    """Write ``report`` as ``out/name`` (JSON, folders made as needed) and say where."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    path.write_text(json.dumps(report, indent=1))
    print(f"saved {path}")
    return path
