"""Entry point for `python -m runner ...` and for `spark-submit runner/__main__.py ...`."""

import sys
from pathlib import Path

if __package__ in (None, ""):
    # Submitted as a file by spark-submit: make the project importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
