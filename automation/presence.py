"""Agent presence: the inbox WebSocket says who is online, the away toggle who is not taking cases.

The state is a DB row per agent (AgentPresence) rather than a cache key: the
assigner locks the rows of the agents it chooses among, so "online" and "under
capacity" are read under the same lock. A socket that died without closing
(a killed server) stops counting once its heartbeat is older than
HELPDESK_AUTOMATION["PRESENCE_TTL_SECONDS"].
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from automation.models import AgentPresence


def _ttl() -> timedelta:
    return timedelta(seconds=settings.HELPDESK_AUTOMATION["PRESENCE_TTL_SECONDS"])


def available_q(*, now: datetime | None = None, prefix: str = "") -> Q:
    """The rows of agents who can take a case now."""
    now = now or timezone.now()
    return Q(
        **{
            f"{prefix}connections__gt": 0,
            f"{prefix}away": False,
            f"{prefix}last_seen_at__gte": now - _ttl(),
        }
    )


def presence_is_available(presence: AgentPresence | None, *, now: datetime | None = None) -> bool:
    if presence is None:
        return False
    now = now or timezone.now()
    return (
        presence.connections > 0
        and not presence.away
        and presence.last_seen_at is not None
        and presence.last_seen_at >= now - _ttl()
    )


def _row(user_id: int) -> AgentPresence:
    presence, _ = AgentPresence.objects.get_or_create(user_id=user_id)
    return presence


def presence_connect(*, user_id: int) -> bool:
    """An inbox socket opened. Returns whether the agent just became available."""
    now = timezone.now()
    with transaction.atomic():
        presence = AgentPresence.objects.select_for_update().filter(user_id=user_id).first() or _row(user_id)
        was = presence_is_available(presence, now=now)
        # A count left over by sockets that died unseen does not survive a TTL.
        stale = presence.last_seen_at is None or presence.last_seen_at < now - _ttl()
        presence.connections = 1 if stale else presence.connections + 1
        presence.last_seen_at = now
        presence.save(update_fields=["connections", "last_seen_at"])
        became = not was and presence_is_available(presence, now=now)
        if became:
            AgentPresence.objects.filter(pk=presence.pk).update(unavailable_since=None)
            transaction.on_commit(lambda: _capacity_freed(user_id))
    return became


def presence_disconnect(*, user_id: int) -> None:
    now = timezone.now()
    with transaction.atomic():
        presence = AgentPresence.objects.select_for_update().filter(user_id=user_id).first()
        if presence is None:
            return
        presence.connections = max(0, presence.connections - 1)
        if presence.connections == 0 and presence.unavailable_since is None:
            presence.unavailable_since = now
        presence.save(update_fields=["connections", "unavailable_since"])


def presence_heartbeat(*, user_id: int) -> None:
    """The inbox is still open (sent every ~30 s by static/automation/automation.js)."""
    updated = AgentPresence.objects.filter(user_id=user_id, connections__gt=0).update(
        last_seen_at=timezone.now()
    )
    if not updated:
        presence_connect(user_id=user_id)


def presence_away_set(*, user_id: int, away: bool) -> AgentPresence:
    now = timezone.now()
    with transaction.atomic():
        presence = AgentPresence.objects.select_for_update().filter(user_id=user_id).first() or _row(user_id)
        was = presence_is_available(presence, now=now)
        presence.away = away
        if away and presence.unavailable_since is None:
            presence.unavailable_since = now
        presence.save(update_fields=["away", "unavailable_since"])
        if not away and not was and presence_is_available(presence, now=now):
            AgentPresence.objects.filter(pk=presence.pk).update(unavailable_since=None)
            transaction.on_commit(lambda: _capacity_freed(user_id))
    return presence


def presence_expire(*, now: datetime | None = None) -> int:
    """Beat: agents whose sockets went silent become unavailable (starts their reassign clock)."""
    now = now or timezone.now()
    return AgentPresence.objects.filter(
        Q(last_seen_at__lt=now - _ttl()) | Q(last_seen_at__isnull=True),
        unavailable_since__isnull=True,
    ).update(unavailable_since=F("last_seen_at"))


def _capacity_freed(user_id: int) -> None:
    from automation.assignment import teams_drain
    from conversations.models import Team

    teams_drain(team_ids=list(Team.objects.filter(members__pk=user_id).values_list("pk", flat=True)))
