"""Alarms on everything that can go wrong, an ops topic for their actions, a dashboard.

Each function: errors and throttles. Each queue: age of the oldest message and depth.
Each DLQ: any message at all. The API's edge (the load balancer, or the HTTP API): 5XX
from itself or its functions.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from conveyor.aws import metrics
from conveyor.infra.compute import Compute
from conveyor.infra.edge import ApiEdge
from conveyor.infra.messaging import Messaging
from conveyor.infra.settings import Settings
from conveyor.topology import Topology

PERIOD = Duration.minutes(5)
QUEUE_DEPTH_ALARM = 1000
ALARM_PREFIX = "conveyor "
"""Alarm descriptions read ``conveyor <kind>:<topology name>:<signal> above <threshold>``."""


class Observability(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        topology: Topology,
        settings: Settings,
        messaging: Messaging,
        compute: Compute,
        frontend: ApiEdge,
    ) -> None:
        super().__init__(scope, construct_id)
        # CloudWatch can publish an alarm only to a topic whose key lets it: the AWS
        # managed SNS key does not, so the alarms get a key of their own.
        self.alarm_key = kms.Key(
            self,
            "AlarmKey",
            description="conveyor: encrypts the alarm topic; CloudWatch may use it",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.alarm_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchPublishesAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )
        self.ops_topic = sns.Topic(
            self,
            "OpsTopic",
            display_name="conveyor alarms",
            enforce_ssl=True,
            master_key=self.alarm_key,
        )
        alarms_here = f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:*"
        self.ops_topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchPublishesAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.ops_topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnLike": {"aws:SourceArn": alarms_here},
                },
            )
        )
        if settings.alarm_email:
            self.ops_topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))
        self.alarms: list[cloudwatch.Alarm] = []
        widgets: list[cloudwatch.IWidget] = []

        for function in topology.functions:
            resource = compute.functions[function.name]
            errors = resource.metric_errors(period=PERIOD, statistic="Sum")
            throttles = resource.metric_throttles(period=PERIOD, statistic="Sum")
            self._alarm(f"function:{function.name}:errors", errors, 0)
            self._alarm(f"function:{function.name}:throttles", throttles, 0)
            widgets.append(
                cloudwatch.GraphWidget(
                    title=f"{function.name}",
                    left=[resource.metric_invocations(period=PERIOD), errors, throttles],
                    right=[resource.metric_duration(period=PERIOD, statistic="p99")],
                )
            )

        for queue in topology.queues:
            if queue.local_only:
                continue
            source, dlq = messaging.queues[queue.name], messaging.queues[queue.dlq_name]
            age = source.metric_approximate_age_of_oldest_message(
                period=PERIOD, statistic="Maximum"
            )
            depth = source.metric_approximate_number_of_messages_visible(
                period=PERIOD, statistic="Maximum"
            )
            dead = dlq.metric_approximate_number_of_messages_visible(
                period=PERIOD, statistic="Maximum"
            )
            self._alarm(f"queue:{queue.name}:age", age, queue.visibility_timeout_s * 2)
            self._alarm(f"queue:{queue.name}:depth", depth, QUEUE_DEPTH_ALARM)
            self._alarm(f"queue:{queue.dlq_name}:depth", dead, 0)
            widgets.append(
                cloudwatch.GraphWidget(title=f"queue {queue.name}", left=[depth, dead], right=[age])
            )

        for function, schedule in topology.scheduled():
            self._canary_alarms(function.name, Duration.minutes(schedule.every_minutes))

        edge = frontend.signals(PERIOD)
        self._alarm(edge.alarm, edge.server_errors, 0)
        widgets.append(
            cloudwatch.GraphWidget(title=edge.title, left=[edge.requests, edge.server_errors])
        )
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=None)
        for start in range(0, len(widgets), 3):
            self.dashboard.add_widgets(*widgets[start : start + 3])

    def _canary_alarms(self, service: str, every: Duration) -> None:
        """A run with a failed check alarms; so do runs that stop (three intervals with
        none: missing data counts against it)."""

        def metric(name: str, statistic: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=metrics.NAMESPACE,
                metric_name=name,
                dimensions_map={"service": service},
                period=every,
                statistic=statistic,
            )

        failed = metric(metrics.CANARY_CHECKS_FAILED, "Sum")
        self._alarm(f"canary:{service}:checks-failed", failed, 0)
        runs = metric(metrics.CANARY_RUNS, "SampleCount")
        self._alarm(f"canary:{service}:runs", runs, 1, below=True, periods=3)

    def _alarm(
        self,
        name: str,
        metric: cloudwatch.IMetric,
        threshold: float,
        *,
        below: bool = False,
        periods: int = 1,
    ) -> None:
        """An alarm when ``metric`` is above ``threshold`` for ``periods`` (no data: no
        alarm), or ``below`` it (no data: alarm, since silence is what it watches for)."""
        alarm = cloudwatch.Alarm(
            self,
            f"Alarm-{name.replace(':', '-')}",
            alarm_description=f"{ALARM_PREFIX}{name} {'below' if below else 'above'} {threshold:g}",
            metric=metric,
            threshold=threshold,
            evaluation_periods=periods,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD
            if below
            else cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.BREACHING
            if below
            else cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(actions.SnsAction(self.ops_topic))
        self.alarms.append(alarm)
