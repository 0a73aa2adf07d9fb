"""cimade-ovh's package: what index.py, stats.py and create_consumer_key.py share, one module per concern.

Importing it first makes the packages of .venv3 importable (ovh, flup), so that Apache
and cron run the three scripts with the system's python3 and no wrapper script.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # The checkout: index.py, lines.ini, .venv3.


def use_virtualenv(venv=ROOT / ".venv3"):
    """Make the packages of .venv3 importable, so Apache needs no wrapper script."""
    if sys.prefix != sys.base_prefix:
        return  # Already running inside a virtualenv.
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site_packages = venv / "lib" / version / "site-packages"
    if site_packages.is_dir():
        # Not site.addsitedir: it would run the folder's .pth files, such as setuptools' distutils hook, which
        # imports a module and then sits in every import; ovh, flup and what they use need no .pth file.
        sys.path.append(str(site_packages))


use_virtualenv()
