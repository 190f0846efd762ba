"""CloudFront in front of the media bucket's ``processed/`` variants, through Origin
Access Control: HTTPS only, and the bucket lets the distribution read nothing else.

A CloudFront Function negotiates each variant's format: on the viewer's request it
rewrites the URI to the best format the URL offers and the ``Accept`` header names (the
cache key follows the rewritten URI), and on the response it adds ``Vary: Accept``. It
is :func:`conveyor.core.media.negotiated` written for CloudFront's JavaScript runtime.
"""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_iam as iam
from constructs import Construct

from conveyor.core.media import MODERN_FORMATS, OFFER_QUERY, PROCESSED_PREFIX, VARIANT_HEADERS, VARY
from conveyor.infra.data import Data
from conveyor.topology import MEDIA_BUCKET


class Cdn(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, data: Data) -> None:
        super().__init__(scope, construct_id)
        bucket = data.buckets[MEDIA_BUCKET]
        access_control = cloudfront.S3OriginAccessControl(self, "AccessControl")
        # CDK's OAC helper would grant s3:GetObject on the whole bucket; the origin gets
        # the access control by id, and the policy below grants processed/ only.
        origin = origins.S3BucketOrigin.with_bucket_defaults(
            bucket,
            origin_access_control_id=access_control.origin_access_control_id,
            origin_path="/" + PROCESSED_PREFIX.rstrip("/"),
        )
        negotiation = cloudfront.Function(
            self,
            "Negotiation",
            code=cloudfront.FunctionCode.from_inline(negotiation_code()),
            runtime=cloudfront.FunctionRuntime.JS_2_0,
            comment="conveyor variants: the best stored format the viewer accepts",
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="conveyor image variants",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origin,
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=self._variant_headers(),
                function_associations=[
                    cloudfront.FunctionAssociation(function=negotiation, event_type=event)
                    for event in (
                        cloudfront.FunctionEventType.VIEWER_REQUEST,
                        cloudfront.FunctionEventType.VIEWER_RESPONSE,
                    )
                ],
            ),
            enable_logging=True,
            log_bucket=data.logs,
            log_file_prefix="cloudfront/",
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
        )
        stack = Stack.of(self)
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudFrontReadsProcessedOnly",
                principals=[iam.ServicePrincipal("cloudfront.amazonaws.com")],
                actions=["s3:GetObject"],
                resources=[bucket.arn_for_objects(f"{PROCESSED_PREFIX}*")],
                conditions={
                    "StringEquals": {
                        "AWS:SourceArn": stack.format_arn(
                            service="cloudfront",
                            region="",
                            resource="distribution",
                            resource_name=self.distribution.distribution_id,
                        )
                    }
                },
            )
        )

    def _variant_headers(self) -> cloudfront.ResponseHeadersPolicy:
        """The headers the local media origin sends too (:data:`VARIANT_HEADERS`), and
        HSTS: the distribution answers only HTTPS."""
        headers = dict(VARIANT_HEADERS)
        csp = headers.pop("Content-Security-Policy")
        assert headers.pop("X-Content-Type-Options") == "nosniff"
        return cloudfront.ResponseHeadersPolicy(
            self,
            "VariantHeaders",
            comment="conveyor variants: nosniff, no script, HSTS",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=csp, override=True
                ),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=Duration.days(365), override=True
                ),
            ),
            custom_headers_behavior=cloudfront.ResponseCustomHeadersBehavior(
                custom_headers=[
                    cloudfront.ResponseCustomHeader(header=name, value=value, override=True)
                    for name, value in headers.items()
                ]
            ),
        )


def negotiation_code() -> str:
    """The negotiation, in CloudFront Functions' JavaScript (runtime 2.0), with its
    formats, query and header filled in from :mod:`conveyor.core.media`."""
    [(header, value)] = VARY.items()
    code = (Path(__file__).parent / "negotiation.js").read_text()
    for name, filled in {
        "__MODERN__": [list(f) for f in MODERN_FORMATS],
        "__OFFER__": OFFER_QUERY,
        "__VARY_HEADER__": header.lower(),
        "__VARY_VALUE__": value,
    }.items():
        code = code.replace(name, json.dumps(filled))
    return code
