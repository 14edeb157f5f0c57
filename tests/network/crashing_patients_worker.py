"""``refnet worker`` that crashes right after a patients batch's state is durable.

Run as the worker process (``python -m tests.network.crashing_patients_worker
worker``) by the tests of a screening decided in one hop: the worker ends (exit
status 70, as :func:`streams.runtime.supervise.fatal`) once the patients agent's
batch, with the referral rows it decided, is durable, before its outputs go out.
"""

from __future__ import annotations

import sys

from tests.network.crashing_worker import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], agent="patients"))
