"""TensorFlow's native start-up lines are filtered from the command line's stderr; every
other line written to descriptor 2 in the block is kept."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = r"""
import os, sys
from tag_pipeline.lib.cli.quiet import filtered_stderr
print("before", file=sys.stderr, flush=True)
with filtered_stderr():
    import tensorflow as tf
    tf.zeros((1, 1)) + 1  # the first operation probes CUDA
    os.write(2, b"native kept\n")
    print("python kept", file=sys.stderr)
print("after", file=sys.stderr, flush=True)
"""


def test_tensorflow_start_up_lines_are_dropped_and_the_rest_kept():
    env = {"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "0"}
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == "before" and lines[-1] == "after"
    assert "native kept" in lines and "python kept" in lines
    assert not any("cudart_stub" in line or "cuInit" in line or "absl::InitializeLog" in line
                   for line in lines), result.stderr
