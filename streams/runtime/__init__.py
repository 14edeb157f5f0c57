"""The worker: the Faust app and everything around the pure decisions.

* :mod:`~streams.runtime.app`: the composition root, :func:`~streams.runtime.app.build`;
* :mod:`~streams.runtime.config`, :mod:`~streams.runtime.hooks`,
  :mod:`~streams.runtime.clock`: what the caller hands in;
* :mod:`~streams.runtime.faust_app`: the Faust app, its producer and consumer, and
  the adapters the batch protocol sees its tables and producer through;
* :mod:`~streams.runtime.agents`, :mod:`~streams.runtime.batches`: the owner agents;
* :mod:`~streams.runtime.outbox`: the batch and outbox protocol;
  :mod:`~streams.runtime.delivery`, :mod:`~streams.runtime.letters`: producing
  outputs, and the dead letters of what cannot be;
* :mod:`~streams.runtime.timers`: deadlines, the view's snapshots, quiet partitions;
* :mod:`~streams.runtime.services`, :mod:`~streams.runtime.supervise`: the
  supervised tasks (view, ingress, ledger sink, monitors);
* :mod:`~streams.runtime.network`: what one worker keeps (deadlines, holders);
* :mod:`~streams.runtime.ingress`: party topics re-keyed to their owners;
* :mod:`~streams.runtime.view`, :mod:`~streams.runtime.view_snapshot`: the network
  view read from Kafka, and its snapshots;
* :mod:`~streams.runtime.store`, :mod:`~streams.runtime.gaps`: bulk changelog
  loads, and input offsets Faust let by.
"""
