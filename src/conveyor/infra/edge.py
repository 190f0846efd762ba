"""What both profiles' API edges share: the CloudFront distribution in front of them, and
what each tells the alarms about itself.

HTTPS by default, without a domain: the distribution's own ``*.cloudfront.net``
certificate (or, with ``-c domain_name=... -c certificate_arn=...``, the caller's domain
and an ACM certificate in us-east-1). Plain HTTP is refused at the edge, never forwarded.
CloudFront caches nothing and forwards every method, header and body unchanged, so
signatures verify as sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from aws_cdk import Duration
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from conveyor.infra.data import Data
from conveyor.infra.settings import Settings

NOT_FOUND_BODY = '{"error":"not_found","reason":"no such route"}'
"""What a request for no route gets, whichever edge answers it."""


@dataclass(frozen=True)
class EdgeSignals:
    """What the observability construct alarms on and draws for an edge."""

    alarm: str
    """The alarm's name: ``<kind>:frontend:5xx``."""
    title: str
    """The dashboard widget's title."""
    requests: cloudwatch.IMetric
    server_errors: cloudwatch.IMetric
    """5XX answers, the edge's own and its functions'."""


class ApiEdge(Protocol):
    """The API's front door in one profile."""

    @property
    def distribution(self) -> cloudfront.Distribution | None:
        """The API's CloudFront distribution; ``None`` where the API is reached directly."""
        ...

    @property
    def url(self) -> str:
        """Where callers reach the API, over HTTPS."""
        ...

    def signals(self, period: Duration) -> EdgeSignals:
        """Its request count and 5XX answers, summed over ``period``."""
        ...


def api_distribution(
    scope: Construct,
    settings: Settings,
    data: Data,
    origin: cloudfront.IOrigin,
    origin_request_policy: cloudfront.IOriginRequestPolicy,
) -> cloudfront.Distribution:
    """The API's distribution: HTTPS only, every method, no caching, access logs."""
    custom_domain = {}
    if settings.domain_name:
        custom_domain = {
            "domain_names": [settings.domain_name],
            "certificate": acm.Certificate.from_certificate_arn(
                scope, "Certificate", str(settings.certificate_arn)
            ),
            "minimum_protocol_version": cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
        }
    return cloudfront.Distribution(
        scope,
        "Distribution",
        comment="conveyor API",
        default_behavior=cloudfront.BehaviorOptions(
            origin=origin,
            viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
            allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
            cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
            origin_request_policy=origin_request_policy,
        ),
        enable_logging=True,
        log_bucket=data.logs,
        log_file_prefix="cloudfront-api/",
        price_class=cloudfront.PriceClass.PRICE_CLASS_100,
        **custom_domain,
    )


def distribution_url(settings: Settings, distribution: cloudfront.Distribution) -> str:
    """The API's HTTPS URL at its own domain, or at the distribution's."""
    return f"https://{settings.domain_name or distribution.distribution_domain_name}"
