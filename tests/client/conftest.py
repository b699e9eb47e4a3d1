"""The client in client/ is a package of its own (pip install ./client); the tests import it from there."""

import sys

from tests import procs

sys.path.insert(0, str(procs.ROOT / "client"))
