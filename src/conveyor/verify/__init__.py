"""``conveyor verify``: black-box checks that prove a running deployment, local or in
AWS, does what the API documents. Standard library, ``core`` and boto3 only: the same
checks run where a canary runs."""
