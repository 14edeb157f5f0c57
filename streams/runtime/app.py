"""The composition root of a worker: builds the Faust app and wires its parts.

* :mod:`streams.runtime.faust_app`: the Faust app and its adapters;
* :mod:`streams.runtime.agents`: the owner agents around the pure decisions;
* :mod:`streams.runtime.outbox`: the batch and outbox protocol (state first,
  then the outputs it explains), :mod:`streams.runtime.delivery` producing
  the outputs and their dead letters;
* :mod:`streams.runtime.timers`: due deadlines, the view's snapshots, quiet
  partitions;
* :mod:`streams.runtime.services`: the view, the ingress, the ledger sink and
  the monitors, supervised.

Tables live in memory, backed by their changelog topics: recovery replays the
changelog on start, so state (and with it every pending deadline) survives a
crash. Newly assigned partitions are loaded in bulk (:mod:`streams.runtime.store`)
and Faust's recovery reads what follows. RocksDB would shorten recovery of large
tables, but its Python bindings are not well kept; the memory store has no
native dependency. A changelog write the broker keeps refusing stops the worker
(:func:`streams.runtime.supervise.fatal`) before the input offset can be committed.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from faust.types import TableT, TopicT

from connectors.observability.observer import PROMETHEUS, WorkerObserver
from schemas.topics import Topics
from streams.runtime import store
from streams.runtime.agents import Agents
from streams.runtime.clock import Clock, system_clock
from streams.runtime.config import NetworkConfig
from streams.runtime.delivery import Delivery
from streams.runtime.faust_app import AppProducer, TableRows, acknowledge, new_app
from streams.runtime.gaps import OffsetGuard
from streams.runtime.hooks import Hooks
from streams.runtime.network import Network
from streams.runtime.outbox import Changelog
from streams.runtime.services import Services
from streams.runtime.store import ChangelogLoader
from streams.runtime.supervise import Supervisor, install_log_redaction
from streams.runtime.timers import Timers
from streams.runtime.view import NetworkView


def build(
    config: NetworkConfig,
    bootstrap: str,
    *,
    hooks: Hooks | None = None,
    observer: WorkerObserver = PROMETHEUS,
    clock: Clock = system_clock,
) -> Network:
    """Everything one worker runs, wired; ``network.app`` is the Faust app to run."""
    install_log_redaction()
    auth = config.kafka_auth
    topics = Topics(
        prefix=config.topic_prefix,
        partitions=config.partitions,
        replication_factor=config.replication_factor,
    )
    app = new_app(config, bootstrap)
    view = NetworkView(
        bootstrap,
        topics,
        refresh_seconds=config.pattern_refresh,
        auth=auth,
        observer=observer,
        clock=clock,
    )
    guard = OffsetGuard(
        bootstrap,
        config.app_id,
        generation=lambda: app.consumer_generation_id,
        auth=auth,
        observer=observer,
    )
    net = Network(
        app=app,
        config=config,
        topics=topics,
        bootstrap=bootstrap,
        view=view,
        supervisor=Supervisor(observer=observer),
    )

    # values are JSON documents (the app's default value serializer); a newly
    # assigned partition is loaded in bulk (streams.runtime.store), not record by record
    app.changelog_loader = ChangelogLoader(bootstrap, auth=auth, observer=observer)
    (patients_table, referrals_table, linkage_table), state_topics = _state(app, config, topics)
    patients_topic, referrals_topic, linkage_topic = state_topics

    producer = AppProducer(app)
    delivery = Delivery(producer, topics, view, observer=observer, clock=clock)
    agents = Agents(
        net,
        changelog=Changelog(producer),
        delivery=delivery,
        guard=guard,
        observer=observer,
        clock=clock,
        hooks=hooks or Hooks(),
        acknowledge=partial(acknowledge, app),
    )
    agents.register(
        patients_topic,
        referrals_topic,
        TableRows(app, patients_table),
        TableRows(app, referrals_table),
        linkage=(linkage_topic, TableRows(app, linkage_table)),
    )

    @referrals_table.on_recover
    async def rebuild_deadlines() -> None:
        """After every rebalance, once the table is recovered and before streams resume."""
        await net.reload_deadlines(referrals_table, net.owned_partitions())

    timers = Timers(net, referrals_table, referrals_topic, guard, observer=observer, clock=clock)
    timers.register()
    services = Services(net, referrals_topic, guard, observer=observer, clock=clock)
    app.service(services.service())
    return net


def _state(
    app: Any, config: NetworkConfig, topics: Topics
) -> tuple[list[TableT[Any, Any]], list[TopicT]]:
    """The worker's three tables (patients, referrals, linkage) and their command topics."""
    tables = [
        app.Table(name, partitions=config.partitions, store=store.URL)
        for name in ("patients", "referrals", "linkage")
    ]
    commands = [
        app.topic(name, key_serializer="raw", value_serializer="raw", partitions=config.partitions)
        for name in (topics.network_patients, topics.network_referrals, topics.network_linkage)
    ]
    return tables, commands


__all__ = ["build"]
