"""Redis connection pools shared by a whole process, for the cache and the channel layer.

Found with bench/webchat.py (2,000 visitor sockets on two uvicorn workers):

- Django's `caches` are per context (asgiref Local), and every WebSocket
  consumer is its own context: each socket that touched the cache (presence,
  rate limits) built its own cache client, its own pool and kept one Redis
  connection open for as long as it lived (2,000 sockets, about 2,000
  connections). `SharedConnectionPool` gives every cache client of a process
  the same pool per URL; redis-py's sync pool is thread-safe and starts afresh
  in a forked child.
- redis-py 8 caps an asyncio pool at 100 connections and raises
  MaxConnectionsError at once past it (it was unbounded before). The channel
  layer has one pool per event loop, so a burst of more than 100 concurrent
  operations (many sockets closing together, a wave of group_add) failed with
  exceptions in the consumers. `RedisChannelLayer` waits for a free
  connection instead (BlockingConnectionPool), keeping the cap.
"""

from __future__ import annotations

import threading

import redis
import redis.asyncio
from channels_redis.core import RedisChannelLayer as _RedisChannelLayer


class SharedConnectionPool(redis.ConnectionPool):
    """`pool_class` for Django's RedisCache: one pool per URL and options in the process."""

    _shared: dict = {}
    _lock = threading.Lock()

    @classmethod
    def from_url(cls, url, **kwargs):
        key = (url, tuple(sorted((k, repr(v)) for k, v in kwargs.items())))
        with cls._lock:
            pool = cls._shared.get(key)
            if pool is None:
                pool = cls._shared[key] = super().from_url(url, **kwargs)
            return pool


class RedisChannelLayer(_RedisChannelLayer):
    """channels_redis whose pools make a burst wait for a connection instead of failing."""

    pool_max_connections = 100
    pool_wait_seconds = 10

    def create_pool(self, index):
        host = dict(self.hosts[index])
        address = host.pop("address", None)
        if address is None:  # sentinels or keyword hosts: channels_redis's own pool
            return super().create_pool(index)
        host.setdefault("max_connections", self.pool_max_connections)
        host.setdefault("timeout", self.pool_wait_seconds)
        return redis.asyncio.BlockingConnectionPool.from_url(address, **host)
