"""``refnet worker`` that crashes right after a referral command's state is durable.

Run as the worker process (``python -m tests.network.crashing_worker worker``)
by the test that replays a command after a crash: the worker is built with a
:class:`streams.runtime.hooks.Hooks` that ends the process (exit status 70,
as :func:`streams.runtime.supervise.fatal`) once a referral batch's state and
outbox are durable, before its outputs are produced.
"""

from __future__ import annotations

import sys
from typing import Any

from streams.runtime import app as runtime_app
from streams.runtime.hooks import Hooks
from streams.runtime.network import Network
from streams.runtime.supervise import fatal


def main(argv: list[str], agent: str = "referrals") -> int:
    """Run the CLI with a worker that ends once ``agent``'s batch state is durable."""
    build = runtime_app.build

    def crash_after_state(done: str) -> None:
        if done == agent:
            fatal(f"crash-after-state: the {agent} batch's state is durable, no output")

    def crashing_build(config: Any, bootstrap: str, **options: Any) -> Network:
        return build(config, bootstrap, hooks=Hooks(after_state=crash_after_state), **options)

    # before the CLI imports the worker, which takes ``build`` from the runtime
    runtime_app.build = crashing_build
    from deploy.cli import main as cli

    return cli(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
