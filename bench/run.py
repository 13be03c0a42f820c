"""`make bench`: run every bench/*.py (each has ``run() -> dict`` and writes its own
area of bench/results.json), then print one table of the headline figures."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from _results import RESULTS  # noqa: E402


def main() -> int:
    failures = 0
    for path in sorted(HERE.glob("*.py")):
        if path.name.startswith("_") or path.name == "run.py":
            continue
        spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        started = time.monotonic()
        print(f"== bench/{path.name}", flush=True)
        try:
            spec.loader.exec_module(module)
            module.run()
        except Exception as exc:  # a broken benchmark must not hide the others
            failures += 1
            print(f"   FAILED: {exc!r}", flush=True)
            continue
        print(f"   done in {time.monotonic() - started:.1f} s", flush=True)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    print()
    print(f"{'area':<8} {'figure':<48} value")
    for area, data in sorted(results.items()):
        for key, value in sorted(data.get("headline", {}).items()):
            print(f"{area:<8} {key:<48} {value}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
