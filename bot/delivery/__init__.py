"""How an update travels: intake, order, pace, supervision, health.

- ``inbox``: the durable, bounded intake (single process) and the per-chat ordered processor.
- ``pacing``: outbound pace per chat, per group and overall, and sends recorded per update.
- ``supervisor``: every long-lived task restarted when it dies; the process exits when one
  keeps dying.
- ``health``: ``/healthz`` and ``/metrics`` (Prometheus) from the supervisor and the counters.

With ``REDIS_URL`` (several processes serving one bot):

- ``queue``: the ingress appends each update, sealed and deduplicated, to its chat's stream.
- ``streams``: workers own streams by lease, read them in order, acknowledge after the work.
- ``shared_pace``: the outbound pace shared by every worker.
- ``coordination``: once-only firings, per-group locks, marks of what was done.
- ``redis_client``: the client and what "Redis is down" raises.

Imported on demand (the single process never loads redis-py's stream code).
"""

from bot.delivery.inbox import (
    ChatOrderedProcessor,
    DeliveryLedger,
    Intake,
    Saturated,
    chat_key,
    jumps_the_queue,
)
from bot.delivery.pacing import SEND_ENDPOINTS, LocalPace, Pace, PacedRequests, is_group
from bot.delivery.supervisor import Supervisor

__all__ = [
    "SEND_ENDPOINTS",
    "ChatOrderedProcessor",
    "DeliveryLedger",
    "Intake",
    "LocalPace",
    "Pace",
    "PacedRequests",
    "Saturated",
    "Supervisor",
    "chat_key",
    "is_group",
    "jumps_the_queue",
]
