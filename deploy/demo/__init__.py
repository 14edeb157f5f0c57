"""``refnet demo``: the whole network at work on one machine, every party simulated.

:mod:`.run` is the command's course; :mod:`.setup` and :mod:`.teardown` start and
stop what it uses; :mod:`.simulation` moves the parties' messages over Kafka;
the parties themselves are pure and seeded: :mod:`.config`, :mod:`.clinics`,
:mod:`.organizations`, and :mod:`.tally` counts what the network did;
:mod:`.display` shows it.
"""
