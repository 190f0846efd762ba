"""The media distribution negotiates each variant's format with a CloudFront Function
that chooses exactly as the local media origin does (``conveyor.core.media.negotiated``):
both run on the same cases here, the function in Node.js as CloudFront's runtime would."""

from __future__ import annotations

import json
import shutil
import subprocess
from itertools import product

import pytest
from aws_cdk.assertions import Match
from aws_cdk.assertions import Template as Assertions

from conveyor.core.media import negotiated
from conveyor.infra.cdn import negotiation_code
from tests.infra.conftest import Synthesized

ACCEPTS = [
    None,
    "*/*",
    "image/*",
    "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",  # Chromium
    "image/webp,*/*",  # an older Safari
    "image/avif;q=0, image/webp",
    "IMAGE/AVIF",
    "image/webp;q=0.5, image/avif;q=0.9",
    "image/avif;q=0.000,image/webp;Q=0",
    "image/avif;q=0x, image/webp;q=",  # malformed weights count as none
    "image/avif ; q=0.0001",
    "text/html",
]
OFFERS = [None, "", "avif,webp", "webp", "avif", "gif", " webp , avif "]
KEYS = ["/large/abc.jpg", "/thumb/abc.png", "/medium/abc.gif", "/large/abc"]


def cases() -> list[dict[str, str | None]]:
    return [
        {"uri": uri, "accept": accept, "offered": offered}
        for uri, accept, offered in product(KEYS, ACCEPTS, OFFERS)
    ]


HARNESS = """
%s
const cases = JSON.parse(process.argv[1]);
const chosen = cases.map((c) => {
  const request = { uri: c.uri, headers: {}, querystring: {} };
  if (c.accept !== null) request.headers.accept = { value: c.accept };
  if (c.offered !== null) request.querystring.formats = { value: c.offered };
  return handler({ context: { eventType: "viewer-request" }, request }).uri;
});
const response = handler({ context: { eventType: "viewer-response" }, response: { headers: {} } });
console.log(JSON.stringify({ chosen, vary: response.headers.vary }));
"""


@pytest.fixture(scope="module")
def node_answers() -> dict[str, object]:
    node = shutil.which("node")
    assert node, "Node.js runs the CloudFront Function here, as it runs the CDK"
    ran = subprocess.run(
        [node, "-e", HARNESS % negotiation_code(), json.dumps(cases())],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    answers: dict[str, object] = json.loads(ran.stdout)
    return answers


def test_the_function_chooses_what_the_local_origin_chooses(
    node_answers: dict[str, object],
) -> None:
    expected = [negotiated(str(c["uri"]), c["accept"], c["offered"]) for c in cases()]
    assert node_answers["chosen"] == expected
    assert len(set(expected)) > len(KEYS), "the cases exercise every choice"


def test_the_function_adds_vary_accept_to_every_answer(node_answers: dict[str, object]) -> None:
    assert node_answers["vary"] == {"value": "Accept"}


def test_the_media_distribution_runs_it_on_request_and_response(
    synthesized: Synthesized,
) -> None:
    template = Assertions.from_stack(synthesized.app.stack)
    template.has_resource_properties(
        "AWS::CloudFront::Function",
        {"FunctionConfig": Match.object_like({"Runtime": "cloudfront-js-2.0"})},
    )
    [function_id] = synthesized.app.of_type("AWS::CloudFront::Function")
    template.has_resource_properties(
        "AWS::CloudFront::Distribution",
        {
            "DistributionConfig": Match.object_like(
                {
                    "Comment": "conveyor image variants",
                    "DefaultCacheBehavior": Match.object_like(
                        {
                            "FunctionAssociations": [
                                {
                                    "EventType": event,
                                    "FunctionARN": {"Fn::GetAtt": [function_id, "FunctionARN"]},
                                }
                                for event in ("viewer-request", "viewer-response")
                            ]
                        }
                    ),
                }
            )
        },
    )
