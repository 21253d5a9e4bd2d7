"""Delivering the outbox: each notification posted until a receiver takes it, with bounded backoff.

One thread groups and sends: first the groups that are due write their notifications (``groups``:
group_wait, group_interval, repeat_interval, silences), then every notification due is sent,
oldest first. A failed attempt (no answer, or any status but 2xx) is recorded and
retried after ``retry_seconds``, doubling up to ``retry_max_seconds``, until ``max_attempts``; then the
notification is given up (``failed``), still visible with every attempt. Since the outbox is in the
store, a notification pending when the collector stops is sent by the next one.

Delivery is at least once: a collector that dies between a receiver's 2xx and recording it sends
that notification again, with the same ``Idempotency-Key`` header so the receiver can drop it.
A group's notification waits until the one before it to the same receiver is done, so no receiver
learns of a resolution before the alert.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import version

import httpx
import orjson

from ..alert_rules import AlertRule, Receiver
from ..storage import Store, StoreUnavailable
from . import groups, records
from .groups import Grouper, GroupNotification
from .metrics import AlertingMetrics
from .payloads import render
from .records import DeliveryRecord
from .settings import AlertSettings

logger = logging.getLogger("threadline.collector")

IDLE_S = 60.0  # with nothing due, look at the outbox again this often anyway


class Dispatcher:
    def __init__(
        self,
        store: Store,
        settings: AlertSettings,
        rules: Callable[[], Sequence[AlertRule]],
        metrics: AlertingMetrics,
        environ: Mapping[str, str] = os.environ,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.store = store
        self.settings = settings
        self.rules = rules  # the alert rules in force (a reload may change them)
        self.metrics = metrics
        self.environ = environ
        self.clock = clock
        self.grouper = Grouper(store, rules, settings.dashboard_url)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="threadline-alert-delivery", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(self.settings.timeout + 5)

    def wake(self) -> None:
        """New notifications are in the outbox: look now rather than at the next retry."""
        self._wake.set()

    def _run(self) -> None:
        with httpx.Client(timeout=self.settings.timeout, follow_redirects=False) as client:
            while not self._stop.is_set():
                self._wake.clear()
                try:
                    wait = self.deliver_due(client)
                except StoreUnavailable as error:
                    logger.warning("threadline: alert delivery paused, the store is unavailable: %s", error)
                    wait = self.settings.retry_seconds
                except Exception:
                    logger.exception("threadline: alert delivery failed unexpectedly; retrying")
                    wait = self.settings.retry_seconds
                self._wake.wait(min(max(wait, 0.01), IDLE_S))

    def receivers(self) -> dict[str, Receiver]:
        """The receivers the rules in force name, by name."""
        return {receiver.name: receiver for rule in self.rules() for receiver in rule.receivers}

    def deliver_due(self, client: httpx.Client) -> float:
        """Write the notifications of the groups that are due, then attempt every notification that
        is due; returns the seconds until the next one is."""
        next_due = min(IDLE_S, self.grouper.flush_due(self.clock()))
        outbox = groups.outbox(self.store)
        still_pending = len(outbox)
        receivers = self.receivers()
        earlier: set[tuple[str, str, str]] = set()  # groups with a notification still to send
        for notification in outbox:
            if self._stop.is_set():
                break
            now = self.clock()
            group = (notification.tenant, notification.receiver, notification.group_key)
            if group in earlier:
                continue  # after the one before it, which is earlier in the outbox
            earlier.add(group)
            if notification.next_attempt_at > now:
                next_due = min(next_due, (notification.next_attempt_at - now).total_seconds())
                continue
            receiver = receivers.get(notification.receiver)
            url = receiver.resolve_url(self.environ) if receiver else None
            if receiver is None:
                done = notification.given_up("the receiver is no longer defined", now)
            elif url is None:
                done = notification.given_up(f"no URL: ${receiver.url_env} is not set", now, status="skipped")
            else:
                done = self._attempt(client, notification, receiver, url)
            groups.save_outbox(self.store, [done])
            if done.status == "pending":
                next_due = min(next_due, (done.next_attempt_at - now).total_seconds())
            else:
                earlier.discard(group)
                still_pending -= 1
        self.metrics.set_pending(still_pending)
        return next_due

    def _attempt(
        self, client: httpx.Client, notification: GroupNotification, receiver: Receiver, url: str
    ) -> GroupNotification:
        """One POST; the attempt is recorded, and the notification as it stands after it returned."""
        body = render(receiver.type, orjson.loads(notification.payload), notification.notification_id)
        headers = {
            "content-type": "application/json",
            "user-agent": f"threadline/{version('threadline')}",
            "idempotency-key": notification.notification_id,
        }
        at = self.clock()
        started = time.monotonic()
        status_code = 0
        try:
            response = client.post(url, content=orjson.dumps(body), headers=headers)
            status_code = response.status_code
            ok = 200 <= status_code < 300
            error = "" if ok else f"HTTP {status_code}: {response.text[:300]}"
        except httpx.HTTPError as failure:  # the URL is left out: it may carry a token
            ok, error = False, f"{type(failure).__name__}: {failure}"[:500]
        duration_ms = (time.monotonic() - started) * 1000
        attempt = notification.attempts + 1
        records.save_delivery(
            self.store,
            DeliveryRecord(
                notification.tenant,
                notification.notification_id,
                attempt,
                at,
                ok,
                status_code,
                error,
                duration_ms,
            ),
        )
        self.metrics.deliveries.labels(receiver.name, "delivered" if ok else "failed").inc()
        retry_in = None if ok or attempt >= self.settings.max_attempts else self.settings.backoff_s(attempt)
        if not ok:
            then = f"retrying in {retry_in:g}s" if retry_in is not None else "giving up"
            logger.warning(
                "threadline: alert group %s to receiver %s, attempt %d failed (%s); %s",
                ", ".join(value for value in notification.labels.values() if value),
                receiver.name,
                attempt,
                error,
                then,
            )
        return notification.after_attempt(ok, error, self.clock(), retry_in)
