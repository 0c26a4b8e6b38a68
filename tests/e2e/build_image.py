"""Build (or find in the cache) the e2e guest image: `python3 tests/e2e/build_image.py [KERNEL]`,
KERNEL one of image.KERNELS (default 6.1).

Prints where it is and how long each stage took. See image.py for what goes in and the cache.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: monitoring_stack
sys.path.insert(0, str(Path(__file__).resolve().parent))

import image

if __name__ == "__main__":
    built = image.build(sys.argv[1] if len(sys.argv) > 1 else image.DEFAULT_KERNEL)
    print(json.dumps({"dir": str(built.dir), "kernel_version": built.kernel_version,
                      "built": built.built, "timings": built.timings}, indent=1))
