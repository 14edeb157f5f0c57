"""Prometheus metrics of a worker (no PHI in any label)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

INGRESS = Counter(
    "refnet_ingress_messages_total",
    "Party messages read by the ingress, by where they went",
    ["routed_as"],
)
COMMANDS = Counter("refnet_commands_total", "Commands applied by an owner agent", ["agent", "kind"])
OUTPUTS = Counter("refnet_outputs_total", "Messages produced by the owners", ["event_type"])
ENCOUNTERS_ROUTED = Counter(
    "refnet_encounters_routed_total",
    "Encounter routings recorded: alerted, no-match, no-consent; by recipient kind",
    ["outcome", "recipient"],
)
DEAD_LETTERS = Counter(
    "refnet_dead_letters_total", "Messages sent to the dead-letter topic", ["kind"]
)
TIMEOUTS = Counter("refnet_offer_timeouts_total", "Offers whose respond_by passed")
TASK_RESTARTS = Counter(
    "refnet_task_restarts_total", "Supervised tasks restarted after a failure", ["task"]
)
SKIPPED_OFFSETS = Counter(
    "refnet_skipped_offsets_total",
    "Input records Faust skipped in a rebalance, read back and applied by the agent",
    ["agent"],
)
POKES = Counter(
    "refnet_pokes_total", "No-op messages sent to wake a quiet partition with a hole", ["agent"]
)
INTERNAL_ERRORS = Counter(
    "refnet_internal_errors_total",
    "Commands on which an agent failed (dead-lettered as internal)",
    ["agent", "error"],
)
SEND_RETRIES = Counter("refnet_send_retries_total", "Sends retried by an agent", ["agent"])
CHANGELOG_LOADED = Counter(
    "refnet_changelog_loaded_records_total",
    "Changelog records a table loaded in bulk after a rebalance (instead of Faust's recovery)",
    ["table"],
)
CHANGELOG_LOAD_FAILURES = Counter(
    "refnet_changelog_load_failures_total",
    "Bulk changelog loads that failed (Faust's recovery then read those partitions)",
    ["table"],
)
VIEW_SNAPSHOTS = Counter(
    "refnet_view_snapshots_total",
    "Snapshots of the network view's record written by this worker, or read at its start",
    ["event"],
)
VIEW_SNAPSHOT_REJECTED = Counter(
    "refnet_view_snapshots_rejected_total",
    "Snapshots found but not used at a start (the whole event log was read instead)",
    ["reason"],
)

# ---------------------------------------------------------------- what the network knows
# Counted by the ledger sink, which reads the event log in one consumer group:
# each event reaches one worker, and only events new to the ledger are counted,
# so a sum over every worker counts each step once (replays add nothing).

#: Steps counted in refnet_referrals_total{step} (``opened`` is a referral's
#: first event, duplicates excepted; ``first_offered`` its first offer to an
#: organization; the rest are connectors.ledger.state's steps).
COUNTED_STEPS = frozenset(
    {
        "opened",
        "first_offered",
        "offered",
        "accepted",
        "rejected",
        "timed_out",
        "completed",
        "failed",
        "expired",
        "unmatched",
        "consent_required",
        "cancelled",
        "network_error",
    }
)
#: Seconds: a minute to 90 days (offers wait hours to days; loops close in weeks).
DURATION_BUCKETS = (
    60.0,
    300.0,
    900.0,
    3600.0,
    4 * 3600.0,
    12 * 3600.0,
    86400.0,
    2 * 86400.0,
    3 * 86400.0,
    7 * 86400.0,
    14 * 86400.0,
    30 * 86400.0,
    60 * 86400.0,
    90 * 86400.0,
)

REFERRALS = Counter(
    "refnet_referrals",
    "Referral steps recorded in the ledger, by step and category (each once across workers)",
    ["step", "category"],
)
TIME_TO_ACCEPT = Histogram(
    "refnet_time_to_accept_seconds",
    "From a referral's opening to its first acceptance",
    ["category"],
    buckets=DURATION_BUCKETS,
)
TIME_TO_CLOSE = Histogram(
    "refnet_time_to_close_seconds",
    "From a referral's opening to its closing with an outcome (completed, or failed by its "
    "organization)",
    ["category"],
    buckets=DURATION_BUCKETS,
)
OPEN_REFERRALS = Gauge(
    "refnet_open_referrals",
    "Referrals not yet closed, network-wide, from the ledger (the same on every worker: use max)",
    ["category"],
)
DEAD_LETTERS_LOGGED = Counter(
    "refnet_dead_letters_logged",
    "Dead letters on the dead-letter topic, by kind (counted once, by the ledger sink)",
    ["kind"],
)
LEDGER_ROWS = Counter("refnet_ledger_rows", "Rows new to the ledger", ["table"])
LEDGER_SKIPPED = Counter(
    "refnet_ledger_skipped", "Records that did not reach the ledger (unreadable or refused)"
)
LEDGER_RETRIES = Counter(
    "refnet_ledger_retries", "Waits of the ledger sink for an unavailable PostgreSQL"
)
CONSUMER_LAG = Gauge(
    "refnet_consumer_lag",
    "Messages not yet committed by a consumer group, per topic (network-wide: use max)",
    ["group", "topic"],
)
WEBHOOK_DELIVERIES = Counter(
    "refnet_webhook_deliveries",
    "Deliveries by kind (webhook, subscription; loop for the delivery loop's own errors) "
    "and outcome (delivered, retried, lease-lost, expired, loop-error): counted by the gateway",
    ["kind", "outcome"],
)
