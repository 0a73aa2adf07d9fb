"""Run the simulator's command line: `python3 -m cimade_ovh.simulator …` from the checkout, or by path,
`python3 cimade_ovh/simulator …` (the folder), from anywhere."""

import sys
from pathlib import Path

if not __package__:  # Run by path: this folder is first on sys.path; the checkout is what it needs there.
    HERE = Path(__file__).resolve().parent
    sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]
    sys.path.insert(0, str(HERE.parent.parent))

from cimade_ovh.simulator.command import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
