"""Per-party quotas at the ingress: one party's flood never becomes everyone's queue.

The ingress and both owner agents are shared queues: without a bound, a clinic
that floods valid screenings delays every other party by the length of its
flood and grows the tables at its rate. :class:`PartyQuota` keeps a token bucket
per party (clinic or organization, named by its topic): ``rate`` messages a
second on average, bursts of up to ``burst``. A message over its party's quota
is refused at the ingress, before it is decoded, with a dead letter of kind
``limit`` naming the rule, so the flood costs the network one small write per
message and the other parties' commands wait behind at most ``burst`` of it.

The buckets are per ingress: a party whose topic's partitions are read by
several workers gets the quota from each of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class PartyQuota:
    """A token bucket per party; ``clock`` is monotonic seconds."""

    rate: float
    burst: float
    clock: Callable[[], float] = time.monotonic
    #: party -> (tokens left, when they were counted)
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError(f"not a quota: {self.rate} a second, bursts of {self.burst}")

    def admit(self, party: str) -> bool:
        """Take one message of ``party``'s quota; False when it has none left."""
        now = self.clock()
        tokens, since = self._buckets.get(party, (self.burst, now))
        tokens = min(self.burst, tokens + (now - since) * self.rate)
        if tokens < 1:
            self._buckets[party] = (tokens, now)
            return False
        self._buckets[party] = (tokens - 1, now)
        return True

    def rule(self, party: str) -> str:
        """The rule a refused message broke, as its dead letter names it."""
        return (
            f"party {party} is over its quota of {self.rate:g} messages a second "
            f"(bursts of {self.burst:g}) at the network's ingress"
        )


__all__ = ["PartyQuota"]
