"""Conveyor: secure, event-driven serverless pipelines on AWS, runnable on one machine."""

DEPLOYED_PACKAGES = ("core", "functions", "aws", "verify")
"""The subpackages of ``conveyor`` that ship to Lambda, beside this ``__init__.py``; the
rest (local runtime, operator tools, CLI, CDK app) stays on the host."""
