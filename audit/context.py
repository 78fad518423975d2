"""The request being served, for audit entries written by signals that do not carry it
(role changes, channel saves): who did it and from where."""

from __future__ import annotations

import contextvars

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

_request = contextvars.ContextVar("audit_request", default=None)


def current_request():
    return _request.get()


class AuditRequestMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)

    async def __acall__(self, request):
        token = _request.set(request)
        try:
            return await self.get_response(request)
        finally:
            _request.reset(token)
