"""The publisher with one of its documented properties switched off, to prove that
``conveyor verify`` catches exactly that: a check that cannot fail proves nothing.

* ``trusting``: signatures are not checked; whoever a request names as its client is
  taken at its word;
* ``forgetful``: no idempotency: every submission is handled as if it were the first.
"""

from __future__ import annotations

from typing import Any

from conveyor.functions import http_edge, publisher


def _trust_the_named_client(event: dict[str, Any], body: bytes) -> str:
    return http_edge.header(event, "X-Client-Id") or "nobody"


def trusting(event: dict[str, Any], context: Any) -> Any:
    http_edge.authenticate = _trust_the_named_client
    return publisher.handler(event, context)


def forgetful(event: dict[str, Any], context: Any) -> Any:
    publisher.idempotent = lambda table, dynamodb: publisher.accept_and_publish  # type: ignore[assignment]
    return publisher.handler(event, context)
