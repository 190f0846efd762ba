"""The AWS CDK app: the whole system as CloudFormation, built from conveyor.topology."""
