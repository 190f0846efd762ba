"""Conveyor: secure, event-driven serverless pipelines on AWS, runnable on one machine."""
