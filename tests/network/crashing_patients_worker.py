"""``refnet worker`` that crashes right after a patients batch's state is durable.

Run as the worker process (``python -m tests.network.crashing_patients_worker
worker``) by the tests of a screening decided in one hop: the worker ends (exit
status 70, as :func:`streams.runtime.supervise.fatal`) once the patients agent's
batch, with the referral rows it decided, is durable, before its outputs go out.
"""

from __future__ import annotations

import sys
from typing import Any

from streams.runtime import app as runtime_app
from streams.runtime.hooks import Hooks
from streams.runtime.network import Network
from streams.runtime.supervise import fatal


def crash_after_state(agent: str) -> None:
    if agent == "patients":
        fatal("crash-after-state: the patient's and referral's rows are durable, no output")


def main(argv: list[str]) -> int:
    build = runtime_app.build

    def crashing_build(config: Any, bootstrap: str, **options: Any) -> Network:
        return build(config, bootstrap, hooks=Hooks(after_state=crash_after_state), **options)

    # before the CLI imports the worker, which takes ``build`` from the runtime
    runtime_app.build = crashing_build
    from deploy.cli import main as cli

    return cli(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
