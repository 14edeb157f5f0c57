"""``python -m deploy.cli``: the ``refnet`` command."""

import sys

from deploy.cli import main

sys.exit(main())
