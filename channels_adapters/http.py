"""HTTP clients for the providers' APIs and our outbound webhooks, one per process, reused with keep-alive.

A new `httpx.Client` (what `httpx.post` builds for every call) loads the CA
bundle into a fresh TLS context: 19 ms of CPU, more than the whole rest of a
send (bench/outbound.py), and a new TCP (and TLS) connection each time.
Twilio's `TwilioHttpClient` holds a `requests.Session`: kept too, its
connection pool is what a second send to the same API reuses.

Per process id: a forked pool child (Celery prefork) must not share its
parent's sockets. The httpx client is thread-safe and shared by the
process's threads; Twilio's keeps per-request state on itself, so each
thread has its own. Timeouts are given per request, from settings.
"""

from __future__ import annotations

import os
import threading

import httpx

_lock = threading.Lock()
_client: httpx.Client | None = None
_client_pid: int | None = None
_local = threading.local()


def provider_http() -> httpx.Client:
    """The process's httpx client for Graph, X, API-channel callbacks and webhook deliveries.

    No redirects followed: a 3xx is the receiver's misconfiguration, and following it
    would send a signed body to wherever it points.
    """
    global _client, _client_pid
    with _lock:
        if _client is None or _client_pid != os.getpid():
            # Not closed when the pid changed: its sockets are the parent's.
            _client = httpx.Client(follow_redirects=False)
            _client_pid = os.getpid()
        return _client


def twilio_http(timeout: float):
    """This thread's TwilioHttpClient (one requests.Session), its timeout set from settings."""
    from twilio.http.http_client import TwilioHttpClient

    client = getattr(_local, "twilio", None)
    if client is None or getattr(_local, "twilio_pid", None) != os.getpid():
        client = TwilioHttpClient(timeout=timeout)
        _local.twilio, _local.twilio_pid = client, os.getpid()
    client.timeout = timeout
    return client
