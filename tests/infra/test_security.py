"""What would be deployed is least-privilege, private and encrypted, read off the template."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor.topology import TOPOLOGY, TRACING_ACTIONS, Function, Kind
from tests.infra.conftest import Synthesized, Template, as_list, statements

CONVEYOR_FUNCTIONS = [f.name for f in TOPOLOGY.functions]


def role_policies(app: Template, function: str) -> list[dict[str, Any]]:
    role = app.named("AWS::IAM::Role")[function]
    return [
        p
        for p in app.of_type("AWS::IAM::Policy").values()
        if {"Ref": role} in p["Properties"]["Roles"]
    ]


def test_there_is_no_nat_gateway_and_no_route_out_of_the_isolated_subnets(
    synthesized: Synthesized,
) -> None:
    network = synthesized.network
    assert network.of_type("AWS::EC2::NatGateway") == {}
    isolated_tables = {
        assoc["Properties"]["RouteTableId"]["Ref"]
        for assoc in network.of_type("AWS::EC2::SubnetRouteTableAssociation").values()
        if "functions" in assoc["Properties"]["SubnetId"]["Ref"]
    }
    assert len(isolated_tables) == 2
    for route in network.of_type("AWS::EC2::Route").values():
        assert route["Properties"]["RouteTableId"]["Ref"] not in isolated_tables


def test_functions_run_only_in_the_isolated_subnets(synthesized: Synthesized) -> None:
    network, app = synthesized.network, synthesized.app
    exports = {out["Export"]["Name"]: out["Value"] for out in network.body["Outputs"].values()}
    functions = app.named("AWS::Lambda::Function")
    assert sorted(functions) == sorted(CONVEYOR_FUNCTIONS)
    for logical_id in functions.values():
        subnets = app.resources[logical_id]["Properties"]["VpcConfig"]["SubnetIds"]
        assert len(subnets) == 2, "both availability zones"
        for subnet in subnets:
            subnet_id = exports[subnet["Fn::ImportValue"]]["Ref"]
            tags = {
                t["Key"]: t["Value"] for t in network.resources[subnet_id]["Properties"]["Tags"]
            }
            assert tags["aws-cdk:subnet-type"] == "Isolated"


def test_the_functions_security_group_has_no_inbound_and_reaches_only_endpoints(
    synthesized: Synthesized,
) -> None:
    network = synthesized.network
    groups = network.of_type("AWS::EC2::SecurityGroup")
    functions_sg = next(k for k in groups if k.startswith("FunctionsSecurityGroup"))
    assert "SecurityGroupIngress" not in groups[functions_sg]["Properties"]
    egress = [
        e["Properties"]
        for e in network.of_type("AWS::EC2::SecurityGroupEgress").values()
        if e["Properties"]["GroupId"]["Fn::GetAtt"][0] == functions_sg
    ]
    egress += groups[functions_sg]["Properties"].get("SecurityGroupEgress", [])
    assert egress, "some egress exists"
    for rule in egress:
        assert rule["FromPort"] == rule["ToPort"] == 443
        assert "CidrIp" not in rule, "never to an address range"
        assert "DestinationSecurityGroupId" in rule or "DestinationPrefixListId" in rule
    services = {
        json_service(e["Properties"]["ServiceName"])
        for e in network.of_type("AWS::EC2::VPCEndpoint").values()
    }
    assert services == {"sns", "sqs", "secretsmanager", "logs", "s3", "dynamodb"}


def json_service(name: Any) -> str:
    text = (
        name
        if isinstance(name, str)
        else "".join(p if isinstance(p, str) else "" for p in name["Fn::Join"][1])
    )
    return text.rsplit(".", 1)[-1]


TRACING = {(action, "literal:*") for action in TRACING_ACTIONS}
"""What active tracing adds to each role, for its daemon to send the function's spans:
X-Ray's write actions name no resource type, so ``*`` is the only resource they take."""


@pytest.mark.parametrize("function", CONVEYOR_FUNCTIONS)
def test_every_role_names_specific_resources_and_no_wildcard_action(
    synthesized: Synthesized, function: str
) -> None:
    app = synthesized.app
    policies = role_policies(app, function)
    assert policies, f"{function} has its own role with a policy"
    for statement in (s for p in policies for s in statements(p)):
        assert statement["Effect"] == "Allow"
        actions = as_list(statement["Action"])
        for action in actions:
            assert "*" not in action, action
        for resource in as_list(statement["Resource"]):
            described = app.describe(resource)
            if {(action, described) for action in actions} <= TRACING:
                continue
            assert not described.startswith("literal:"), f"{function}: {resource}"
    role = app.resources[app.named("AWS::IAM::Role")[function]]["Properties"]
    managed = [p["Fn::Join"][1][-1] for p in role["ManagedPolicyArns"]]
    assert managed == [":iam::aws:policy/service-role/AWSLambdaENIManagementAccess"]


def expected_permissions(function: Function) -> set[tuple[str, str]]:
    kinds = {
        Kind.TOPIC: "topic",
        Kind.QUEUE: "queue",
        Kind.TABLE: "table",
        Kind.BUCKET: "bucket",
        Kind.SECRET: "secret",
    }
    found: set[tuple[str, str]] = set()
    for grant in TOPOLOGY.permissions(function):
        resource = f"{kinds[grant.kind]}:{grant.resource}" + (
            f"/{grant.scope}" if grant.scope else ""
        )
        found.update((action, resource) for action in grant.actions)
    return found


@pytest.mark.parametrize("function", TOPOLOGY.functions, ids=lambda f: f.name)
def test_each_function_may_do_exactly_what_the_topology_declares(
    synthesized: Synthesized, function: Function
) -> None:
    app = synthesized.app
    actual = set()
    for statement in (s for p in role_policies(app, function.name) for s in statements(p)):
        for resource in as_list(statement["Resource"]):
            described = app.describe(resource)
            for action in as_list(statement["Action"]):
                actual.add((action, described))
    logs = {item for item in actual if item[1].startswith("loggroup:")}
    own_log_group = app.resources[app.named("AWS::Lambda::Function")[function.name]]["Properties"][
        "LoggingConfig"
    ]["LogGroup"]["Ref"]
    assert logs == {
        ("logs:CreateLogStream", f"loggroup:{own_log_group}"),
        ("logs:PutLogEvents", f"loggroup:{own_log_group}"),
    }
    assert actual >= TRACING
    assert actual - logs - TRACING == expected_permissions(function)


def test_queue_policies_accept_only_their_topic_or_bucket_and_require_tls(
    synthesized: Synthesized,
) -> None:
    app = synthesized.app
    queues = app.named("AWS::SQS::Queue")
    senders: dict[str, list[dict[str, Any]]] = {}
    for policy in app.of_type("AWS::SQS::QueuePolicy").values():
        for queue_ref in policy["Properties"]["Queues"]:
            name = app.name_of(queue_ref["Ref"])
            for statement in statements(policy):
                senders.setdefault(name, []).append(statement)
    for name in queues:
        queue_statements = senders[name]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in queue_statements
        ), name
        for allow in (s for s in queue_statements if s["Effect"] == "Allow"):
            service = allow["Principal"]["Service"]
            condition = allow["Condition"]
            source = condition.get("ArnEquals", condition.get("ArnLike", {}))["aws:SourceArn"]
            assert app.describe(source).split(":")[0] in ("topic", "bucket")
            if service == "s3.amazonaws.com":
                assert condition["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    subscribed = {s.queue for s in TOPOLOGY.subscriptions} | {
        n.queue for n in TOPOLOGY.notifications
    }
    for name in subscribed & set(queues):
        assert any(s["Effect"] == "Allow" for s in senders[name]), f"{name} receives nothing"


def test_buckets_block_public_access_encrypt_version_and_deny_plain_http(
    synthesized: Synthesized,
) -> None:
    app = synthesized.app
    buckets = app.of_type("AWS::S3::Bucket")
    assert len(buckets) == len(TOPOLOGY.buckets) + 1, "the topology's buckets and the logs one"
    for logical_id, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        policy = next(
            p
            for p in app.of_type("AWS::S3::BucketPolicy").values()
            if p["Properties"]["Bucket"] == {"Ref": logical_id}
        )
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements(policy)
        )
    for name in ("archive", "media"):
        assert buckets[app.named("AWS::S3::Bucket")[name]]["Properties"][
            "VersioningConfiguration"
        ] == {"Status": "Enabled"}


def test_topics_and_queues_and_tables_are_encrypted(synthesized: Synthesized) -> None:
    app = synthesized.app
    for topic in app.of_type("AWS::SNS::Topic").values():
        assert topic["Properties"]["KmsMasterKeyId"]
    for queue in app.of_type("AWS::SQS::Queue").values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
    for table in app.of_type("AWS::DynamoDB::Table").values():
        assert table["Properties"]["SSESpecification"] == {"SSEEnabled": True}


def test_secrets_are_never_in_function_environments(synthesized: Synthesized) -> None:
    app = synthesized.app
    secrets = set(app.of_type("AWS::SecretsManager::Secret"))
    for function in app.named("AWS::Lambda::Function").values():
        env = app.resources[function]["Properties"]["Environment"]["Variables"]
        for name, value in env.items():
            if isinstance(value, dict) and value.get("Ref") in secrets:
                assert name == "CLIENT_SECRETS_ID", "only the secret's ARN, by reference"
            assert "SecretString" not in str(value)
