"""TensorFlow's native start-up lines are filtered from the command line's stderr; every
other line written to descriptor 2 in the block is kept."""

from __future__ import annotations

import os
import sys

from tag_pipeline.lib.cli.quiet import filtered_stderr

# What TensorFlow 2.20 printed on this CPU-only machine while a model loaded (copied verbatim)
START_UP = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796317813.757396   11479 cudart_stub.cc:31] Could not find cuda drivers on "
    "your machine, GPU will not be used.",
    "E0000 00:00:1796317829.637322   11479 cuda_platform.cc:52] failed call to cuInit: "
    "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
]


def test_tensorflow_start_up_lines_are_dropped_and_the_rest_kept(capfd):
    print("before", file=sys.stderr, flush=True)
    with filtered_stderr():
        for line in START_UP:
            os.write(2, (line + "\n").encode())
        os.write(2, b"E0000 00:00:1.0  1 model.cc:3] a real native error\n")
        print("python kept", file=sys.stderr)
    print("after", file=sys.stderr, flush=True)
    lines = capfd.readouterr().err.splitlines()
    assert lines[0] == "before" and lines[-1] == "after"
    assert sorted(lines[1:-1]) == ["E0000 00:00:1.0  1 model.cc:3] a real native error",
                                   "python kept"]
