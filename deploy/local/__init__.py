"""The development environment: an embedded Kafka and PostgreSQL on this machine.

:mod:`.broker` runs a KRaft cluster (:mod:`.state` records it and asks it whether
it answers, :mod:`.kraft` writes its configuration, :mod:`.ca` and
:mod:`.operator` make a secure one's certificates and super user), :mod:`.runtime`
finds Java, the pinned jars and free ports, and :mod:`.database` runs PostgreSQL.
``refnet dev`` and the test fixtures use them.
"""
