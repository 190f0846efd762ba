"""Settings, triggers, routes, alarms and lifecycles equal the topology's."""

from __future__ import annotations

import json

import pytest

from conveyor.core.media import VARIANT_HEADERS
from conveyor.local.runtime import gateway_routes, pollers
from conveyor.topology import TOPOLOGY, Queue
from tests.infra.conftest import Synthesized

CLOUD_QUEUES = [q for q in TOPOLOGY.queues if not q.local_only]


@pytest.mark.parametrize("queue", CLOUD_QUEUES, ids=lambda q: q.name)
def test_queue_and_dlq_settings_equal_the_topology(synthesized: Synthesized, queue: Queue) -> None:
    app = synthesized.app
    named = app.named("AWS::SQS::Queue")
    source = app.resources[named[queue.name]]["Properties"]
    dlq = app.resources[named[queue.dlq_name]]["Properties"]
    assert source["VisibilityTimeout"] == queue.visibility_timeout_s
    assert source["MessageRetentionPeriod"] == queue.retention_s
    assert source["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [named[queue.dlq_name], "Arn"]},
        "maxReceiveCount": queue.dead_letter.max_receive_count,
    }
    assert dlq["MessageRetentionPeriod"] == queue.dead_letter.retention_s


def test_local_only_queues_are_not_deployed(synthesized: Synthesized) -> None:
    local = {q.name for q in TOPOLOGY.queues if q.local_only}
    assert local
    assert not local & set(synthesized.app.named("AWS::SQS::Queue"))


def test_event_source_mappings_are_the_local_runtimes_pollers(synthesized: Synthesized) -> None:
    app = synthesized.app
    deployed = set()
    for mapping in app.of_type("AWS::Lambda::EventSourceMapping").values():
        props = mapping["Properties"]
        deployed.add(
            (
                app.name_of(props["FunctionName"]["Ref"]),
                app.name_of(props["EventSourceArn"]["Fn::GetAtt"][0]),
                props["BatchSize"],
                props.get("MaximumBatchingWindowInSeconds", 0),
                props.get("FunctionResponseTypes") == ["ReportBatchItemFailures"],
                props["ScalingConfig"]["MaximumConcurrency"],
            )
        )
    local = {
        (
            f.name,
            t.queue,
            t.batch_size,
            t.batching_window_s,
            t.report_batch_item_failures,
            t.max_concurrency,
        )
        for f, t in pollers(TOPOLOGY)
    }
    assert deployed == local


def test_functions_have_the_topologys_size_and_the_right_runtime(
    synthesized: Synthesized,
) -> None:
    app = synthesized.app
    for function in TOPOLOGY.functions:
        props = app.resources[app.named("AWS::Lambda::Function")[function.name]]["Properties"]
        assert props["Runtime"] == "python3.12"
        assert props["Architectures"] == ["arm64"]
        assert props["MemorySize"] == function.memory_mb
        assert props["Timeout"] == function.timeout_s
        assert props.get("ReservedConcurrentExecutions") == function.reserved_concurrency
        assert props["Handler"] == function.handler.replace(":", ".")
        # Powertools and telemetry for all, Pillow for the image function.
        assert len(props["Layers"]) == (3 if function.name == "images" else 2)
        assert props["TracingConfig"] == {"Mode": "Active"}
        env = props["Environment"]["Variables"]
        assert {g.env for g in function.grants if g.env} <= set(env)
        assert TOPOLOGY.settings(function).items() <= env.items()


def test_the_load_balancer_routes_what_the_local_gateway_routes(synthesized: Synthesized) -> None:
    app = synthesized.app
    groups = {
        k: v["Properties"]
        for k, v in app.of_type("AWS::ElasticLoadBalancingV2::TargetGroup").items()
    }
    routed = {}
    for rule in app.of_type("AWS::ElasticLoadBalancingV2::ListenerRule").values():
        props = rule["Properties"]
        [patterns] = [
            c["PathPatternConfig"]["Values"]
            for c in props["Conditions"]
            if c["Field"] == "path-pattern"
        ]
        path, items = patterns
        assert items == f"{path}/*", "the status endpoints under the same function"
        group = groups[props["Actions"][0]["TargetGroupArn"]["Ref"]]
        function = group["Targets"][0]["Id"]["Fn::GetAtt"][0]
        routed[path] = app.name_of(function)
        attributes = {a["Key"]: a["Value"] for a in group["TargetGroupAttributes"]}
        # Functions see a repeated header as repeated, and refuse a repeated signature.
        assert attributes["lambda.multi_value_headers.enabled"] == "true"
    assert routed == gateway_routes(TOPOLOGY)
    [listener] = app.of_type("AWS::ElasticLoadBalancingV2::Listener").values()
    assert listener["Properties"]["Protocol"] == "HTTP", "CloudFront ends TLS"
    default = listener["Properties"]["DefaultActions"][0]["FixedResponseConfig"]
    assert default["StatusCode"] == "404"
    assert json.loads(default["MessageBody"])["error"] == "not_found"
    [alb] = app.of_type("AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    attributes = {a["Key"]: a["Value"] for a in alb["Properties"]["LoadBalancerAttributes"]}
    assert attributes["access_logs.s3.enabled"] == "true"
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert alb["Properties"]["Scheme"] == "internal", "reached through CloudFront only"


def test_tables_serve_the_access_patterns_the_code_queries(synthesized: Synthesized) -> None:
    app = synthesized.app
    for table in TOPOLOGY.tables:
        props = app.resources[app.named("AWS::DynamoDB::Table")[table.name]]["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        keys = [table.partition_key, *([table.sort_key] if table.sort_key else [])]
        assert [k["AttributeName"] for k in props["KeySchema"]] == keys
        indexes = {
            i["IndexName"]: [k["AttributeName"] for k in i["KeySchema"]]
            for i in props.get("GlobalSecondaryIndexes", [])
        }
        assert indexes == {i.name: [i.partition_key, i.sort_key] for i in table.indexes}
        if table.ttl_attribute:
            assert props["TimeToLiveSpecification"] == {
                "AttributeName": table.ttl_attribute,
                "Enabled": True,
            }


def test_bucket_lifecycles_expire_what_the_pipelines_leave(synthesized: Synthesized) -> None:
    app = synthesized.app
    named = app.named("AWS::S3::Bucket")

    def rules(name: str) -> dict[str, dict[str, object]]:
        config = app.resources[named[name]]["Properties"]["LifecycleConfiguration"]
        return {r["Id"]: r for r in config["Rules"]}

    media = rules("media")
    assert {(r.get("Prefix"), r.get("ExpirationInDays")) for r in media.values()} >= {
        ("uploads/", 7),
        ("processed/", 90),
        ("quarantine/", 30),
    }
    archive = rules("archive")
    assert archive["infrequent-access"]["Transitions"] == [
        {"StorageClass": "STANDARD_IA", "TransitionInDays": 30}
    ]
    assert archive["verification-traffic"]["ExpirationInDays"] == 1


def test_cloudfront_serves_only_processed_images_over_https_through_oac(
    synthesized: Synthesized,
) -> None:
    app = synthesized.app
    [(distribution_id, distribution)] = [
        (logical_id, d)
        for logical_id, d in app.of_type("AWS::CloudFront::Distribution").items()
        if d["Properties"]["DistributionConfig"]["Comment"] == "conveyor image variants"
    ]
    config = distribution["Properties"]["DistributionConfig"]
    [origin] = config["Origins"]
    assert origin["OriginPath"] == "/processed"
    assert origin["OriginAccessControlId"]["Fn::GetAtt"][1] == "Id"
    assert app.name_of(origin["DomainName"]["Fn::GetAtt"][0]) == "media"
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "https-only"
    media = app.named("AWS::S3::Bucket")["media"]
    policy = next(
        p
        for p in app.of_type("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": media}
    )
    reads = [
        s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"
    ]
    assert len(reads) == 1
    assert reads[0]["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert reads[0]["Action"] == "s3:GetObject"
    assert app.describe(reads[0]["Resource"]) == "bucket:media/processed/*"
    assert distribution_id in json.dumps(reads[0]["Condition"])


def test_cloudfront_sends_every_variant_with_the_local_origins_headers_and_hsts(
    synthesized: Synthesized,
) -> None:
    [media] = [
        d["Properties"]["DistributionConfig"]
        for d in synthesized.app.of_type("AWS::CloudFront::Distribution").values()
        if d["Properties"]["DistributionConfig"]["Comment"] == "conveyor image variants"
    ]
    policy_id = media["DefaultCacheBehavior"]["ResponseHeadersPolicyId"]["Ref"]
    config = synthesized.app.resources[policy_id]["Properties"]["ResponseHeadersPolicyConfig"]
    security = config["SecurityHeadersConfig"]
    sent = {
        h["Header"]: h["Value"] for h in config["CustomHeadersConfig"]["Items"] if h["Override"]
    }
    sent["Content-Security-Policy"] = security["ContentSecurityPolicy"]["ContentSecurityPolicy"]
    assert security["ContentTypeOptions"]["Override"], "X-Content-Type-Options: nosniff"
    sent["X-Content-Type-Options"] = "nosniff"
    assert sent == VARIANT_HEADERS
    assert security["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31_536_000


def test_alarms_watch_every_function_queue_dlq_and_the_load_balancer(
    synthesized: Synthesized,
) -> None:
    app = synthesized.app
    alarms = {
        a["Properties"]["AlarmDescription"].split()[1]: a["Properties"]
        for a in app.of_type("AWS::CloudWatch::Alarm").values()
    }
    expected = {"alb:frontend:5xx"}
    for function in TOPOLOGY.functions:
        expected |= {f"function:{function.name}:errors", f"function:{function.name}:throttles"}
    for queue in CLOUD_QUEUES:
        expected |= {
            f"queue:{queue.name}:age",
            f"queue:{queue.name}:depth",
            f"queue:{queue.dlq_name}:depth",
        }
    assert set(alarms) == expected
    ops_topic = next(k for k in app.of_type("AWS::SNS::Topic") if "OpsTopic" in k)
    for name, alarm in alarms.items():
        assert alarm["AlarmActions"] == [{"Ref": ops_topic}], name
        kind, subject, _ = name.split(":")
        if kind in ("function", "queue"):
            [dimension] = alarm["Dimensions"]
            reference = dimension["Value"].get("Ref") or dimension["Value"]["Fn::GetAtt"][0]
            assert app.name_of(reference) == subject, name
        if name.endswith("-dlq:depth"):
            assert (alarm["MetricName"], alarm["Threshold"]) == (
                "ApproximateNumberOfMessagesVisible",
                0,
            )
    assert app.of_type("AWS::CloudWatch::Dashboard")
