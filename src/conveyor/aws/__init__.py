"""Deployed, AWS-side helpers the functions share: clients, the environment contract,
metrics, and the tables' item shapes and conditional writes. Ships to Lambda."""
