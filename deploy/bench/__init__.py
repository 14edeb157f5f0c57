"""``refnet bench``: what refnet costs, measured in one run on the embedded broker.

Prints figures; asserts nothing (speed is a benchmark's business, never a
test's). Each part says what it measured and how; ``--json`` prints them as one
object for machines. Parts:

1. ``passthrough``: a raw aiokafka consume-decode-produce loop on the same
   broker, the ceiling any Kafka consumer in Python meets here;
   then the floors (``floors``): bare Faust apps with refnet's settings, one of
   refnet's topology (a re-key, then two agents with a changelogged table
   each) and one hop with a table: what the framework allows (refnet's
   pipeline is compared with both);
2. ``pipeline``: screenings published as fast as possible by one clinic,
   through a real ``refnet worker``, until every referral was offered;
3. ``latency``: end-to-end latency (publish to offer) at fixed rates;
4. ``cost``: the worker's CPU seconds per 1,000 screenings and its peak RSS;
5. ``ranking``: cost of ranking one offer with 10, 1,000 and 10,000 services;
6. ``startup``: a worker's start-to-ready with N events of history on the log,
   from the network's snapshot of its view (and the events after it), and
   reading the whole log as the first worker of a network does;
7. ``deadlines``: timer tick cost and firing delay with N open offers;
8. ``restore``: a worker's recovery time for N referrals in its table, and the
   memory each open referral takes.

Sizes default to what runs in a few minutes on a 2-core machine; ``--full``
uses the issue's sizes (10^6 events, referrals and deadlines).
"""
