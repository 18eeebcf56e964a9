"""Access rules, quota overrides, the audit log, usage counters and answer times."""

from __future__ import annotations

import logging
import time

from services.core.types import (
    Usage,
    UsageStats,
)
from services.storage.base import StoreBase, Tx, transaction

logger = logging.getLogger(__name__)


class AccessStore(StoreBase):
    """Access rules, quota overrides, the audit log, usage counters and answer times."""

    # ------------------------------------------------------------------ access and quotas

    @transaction
    async def access_rules(self, tx: Tx, subjects: list[str]) -> dict[str, bool]:
        """The stored allow / deny rule of each subject that has one."""
        if not subjects:
            return {}
        marks = ",".join("?" * len(subjects))
        rows = await tx.fetch(
            f"SELECT subject, allowed FROM access_rules WHERE subject IN ({marks})",  # noqa: S608
            *subjects,
        )
        return {str(subject): bool(allowed) for subject, allowed in rows}

    @transaction
    async def set_access_rule(self, tx: Tx, subject: str, allowed: bool, by: int) -> None:
        """Store an allow or deny rule, audited."""
        await tx.execute(
            "INSERT INTO access_rules (subject, allowed) VALUES (?, ?)"
            " ON CONFLICT (subject) DO UPDATE SET allowed = excluded.allowed",
            subject,
            int(allowed),
        )
        await self._audit(tx, by, "allow" if allowed else "deny", subject, "")

    @transaction
    async def quota_override(self, tx: Tx, user_id: int) -> int | None:
        """A user's own daily request quota, if set."""
        row = await tx.fetchrow("SELECT requests FROM quota_overrides WHERE user_id = ?", user_id)
        return int(row[0]) if row else None

    @transaction
    async def set_quota_override(self, tx: Tx, user_id: int, requests: int, by: int) -> None:
        """Set a user's daily request quota, audited."""
        await tx.execute(
            "INSERT INTO quota_overrides (user_id, requests) VALUES (?, ?)"
            " ON CONFLICT (user_id) DO UPDATE SET requests = excluded.requests",
            user_id,
            requests,
        )
        await self._audit(tx, by, "quota", str(user_id), str(requests))

    async def _audit(self, tx: Tx, admin_id: int, action: str, subject: str, value: str) -> None:
        await tx.execute(
            "INSERT INTO admin_audit (at, admin_id, action, subject, value)"
            " VALUES (?, ?, ?, ?, ?)",
            int(time.time()),
            admin_id,
            action,
            subject,
            value,
        )

    @transaction
    async def audit_log(self, tx: Tx, limit: int = 20) -> list[tuple[int, int, str, str, str]]:
        """The newest operator changes, newest first."""
        query = (
            "SELECT at, admin_id, action, subject, value FROM admin_audit"  # noqa: S608
            f" ORDER BY {self.newest_first} LIMIT ?"  # a class constant
        )
        rows = await tx.fetch(query, limit)
        return [
            (int(at), int(admin), str(action), str(subject), str(value))
            for at, admin, action, subject, value in rows
        ]

    @transaction
    async def usage(self, tx: Tx, day: str, scope: str, subject: int) -> Usage:
        """What ``subject`` used on ``day``."""
        row = await tx.fetchrow(
            "SELECT requests, chars, tokens, refused FROM usage_daily"
            " WHERE day = ? AND scope = ? AND subject = ?",
            day,
            scope,
            subject,
        )
        return Usage(*(int(v) for v in row)) if row else Usage()

    @transaction
    async def add_usage(
        self,
        tx: Tx,
        day: str,
        scope: str,
        subject: int,
        usage: Usage,
        once_key: str | None = None,
    ) -> None:
        """Add to the day's counters of ``subject`` (only once per ``once_key``, e.g. the
        update id and what is counted, in the same transaction)."""
        if once_key is not None:
            fresh = await tx.execute(
                "INSERT INTO usage_counted (usage_key, scope, subject, counted_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (usage_key, scope, subject) DO NOTHING",
                once_key,
                scope,
                subject,
                int(time.time()),
            )
            if not fresh:
                return
        await tx.execute(
            """
            INSERT INTO usage_daily (day, scope, subject, requests, chars, tokens, refused)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (day, scope, subject) DO UPDATE SET
                requests = usage_daily.requests + excluded.requests,
                chars = usage_daily.chars + excluded.chars,
                tokens = usage_daily.tokens + excluded.tokens,
                refused = usage_daily.refused + excluded.refused
            """,
            day,
            scope,
            subject,
            usage.requests,
            usage.chars,
            usage.tokens,
            usage.refused,
        )

    @transaction
    async def record_answer_time(self, tx: Tx, day: str, seconds: float) -> None:
        """Remember one request's handling time."""
        await tx.execute("INSERT INTO answer_times (day, seconds) VALUES (?, ?)", day, seconds)

    @transaction
    async def first_notice_today(self, tx: Tx, chat_id: int, day: str) -> bool:
        """True the first time ``chat_id`` is refused on ``day``."""
        added = await tx.execute(
            "INSERT INTO access_notices (chat_id, day) VALUES (?, ?)"
            " ON CONFLICT (chat_id, day) DO NOTHING",
            chat_id,
            day,
        )
        return added == 1

    @transaction
    async def usage_stats(self, tx: Tx, days: list[str]) -> UsageStats:
        """Counts over ``days`` (users and chats that made at least one request)."""
        marks = ",".join("?" * len(days))
        where = f"day IN ({marks})"
        rows = await tx.fetch(
            f"SELECT scope, COUNT(DISTINCT subject), SUM(requests), SUM(tokens), SUM(refused)"  # noqa: S608
            f" FROM usage_daily WHERE {where} AND requests > 0 GROUP BY scope",
            *days,
        )
        by_scope = {str(row[0]): row[1:] for row in rows}
        refused_row = await tx.fetchrow(
            f"SELECT SUM(refused) FROM usage_daily WHERE {where} AND scope = 'user'",  # noqa: S608
            *days,
        )
        times = [
            float(row[0])
            for row in await tx.fetch(
                f"SELECT seconds FROM answer_times WHERE {where} ORDER BY seconds",  # noqa: S608
                *days,
            )
        ]
        top = [
            (int(subject), int(total))
            for subject, total in await tx.fetch(
                f"SELECT subject, SUM(requests) AS total FROM usage_daily WHERE {where}"  # noqa: S608
                " AND scope = 'user' GROUP BY subject HAVING SUM(requests) > 0"
                " ORDER BY total DESC LIMIT 5",
                *days,
            )
        ]
        users = by_scope.get("user", (0, 0, 0, 0))
        chats = by_scope.get("chat", (0, 0, 0, 0))

        def percentile(share: float) -> float:
            return times[min(len(times) - 1, int(share * len(times)))] if times else 0.0

        return UsageStats(
            users=int(users[0] or 0),
            chats=int(chats[0] or 0),
            requests=int(users[1] or 0),
            tokens=int(users[2] or 0),
            refused=int((refused_row[0] if refused_row else 0) or 0),
            answer_p50=percentile(0.5),
            answer_p95=percentile(0.95),
            top_users=top,
        )
