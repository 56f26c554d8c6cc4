"""TensorFlow's native start-up lines kept out of the command line's output.

On a machine without a GPU, importing TensorFlow and running its first operation print lines
such as ``Could not find cuda drivers on your machine`` and ``failed call to cuInit`` from C++,
straight to file descriptor 2, whatever ``TF_CPP_MIN_LOG_LEVEL`` says. ``filtered_stderr``
sends descriptor 2 to a private file for a block and then writes back every line that is not
such start-up noise, so warnings and errors are kept, only later. oneDNN stays on.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

# absl's notice before its logging starts, and the CUDA probes of a CPU-only machine
NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to "
    r"STDERR|[IWE]\d{4} [\d:.]+\s+\d+ (cudart_stub|cuda_platform|cuda_executor|cuda_dnn|"
    r"cuda_fft|cuda_blas|cuda_diagnostics|port)\.cc:\d+\] .*)\s*$")


@contextmanager
def filtered_stderr(noise: re.Pattern[str] = NOISE) -> Iterator[None]:
    """Run the block with descriptor 2 captured; write back the lines ``noise`` does not
    match (see the module doc)."""
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 (a daemon): nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as capture:
        for stream in (sys.stderr, sys.__stderr__):
            if stream is not None:
                stream.flush()
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            for stream in (sys.stderr, sys.__stderr__):
                if stream is not None:
                    stream.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().decode("utf-8", "replace"
                                                            ).splitlines(keepends=True)
                    if not noise.match(line)]
            if kept:
                os.write(2, "".join(kept).encode("utf-8"))
