"""Prometheus metrics of a worker (no PHI in any label)."""

from __future__ import annotations

from prometheus_client import Counter

INGRESS = Counter(
    "refnet_ingress_messages_total",
    "Party messages read by the ingress, by where they went",
    ["routed_as"],
)
COMMANDS = Counter("refnet_commands_total", "Commands applied by an owner agent", ["agent", "kind"])
OUTPUTS = Counter("refnet_outputs_total", "Messages produced by the owners", ["event_type"])
DEAD_LETTERS = Counter(
    "refnet_dead_letters_total", "Messages sent to the dead-letter topic", ["kind"]
)
TIMEOUTS = Counter("refnet_offer_timeouts_total", "Offers whose respond_by passed")
TASK_RESTARTS = Counter(
    "refnet_task_restarts_total", "Supervised tasks restarted after a failure", ["task"]
)
INTERNAL_ERRORS = Counter(
    "refnet_internal_errors_total",
    "Commands on which an agent failed (dead-lettered as internal)",
    ["agent", "error"],
)
SEND_RETRIES = Counter("refnet_send_retries_total", "Sends retried by an agent", ["agent"])
