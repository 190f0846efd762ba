"""``python -m conveyor.infra.app``: synthesize the stacks into ``cdk.out``.

Context (``cdk -c name=value`` or ``cdk.json``): ``region``, ``account``,
``availability_zones`` (two, comma-separated), ``domain_name`` with ``certificate_arn``
(the API's own domain on its CloudFront distribution; by default it answers at the
distribution's domain), ``alarm_email`` (subscribed to the ops topic),
``reserve_concurrency``, ``profile`` (``private`` or ``lean``), ``api_cdn``,
``snap_start``, ``canary`` (``true``: the scheduled canary) with ``canary_every``
(minutes, default 5).
"""

from __future__ import annotations

import os
from pathlib import Path

# jsii prints a large banner about the Node.js version on every start; the end-of-life
# one is silenced per major version.
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "16,18,20")

from aws_cdk import App

from conveyor.infra.settings import LAYERS_DIR, Settings
from conveyor.infra.stacks import build
from conveyor.topology import TOPOLOGY

FEATURE_FLAGS = {
    # Keep today's behaviour explicitly: an exporting stack refuses to drop an export
    # that another stack still imports.
    "@aws-cdk/core:defaultCrossStackReferences": "strong",
}


def make_app(
    outdir: str, layers_dir: Path = LAYERS_DIR, context: dict[str, str] | None = None
) -> App:
    app = App(outdir=outdir, context={**FEATURE_FLAGS, **(context or {})})
    settings = Settings.from_app(app, layers_dir)
    topology = settings.topology(TOPOLOGY)
    problems = topology.problems()
    if problems:
        raise SystemExit("the topology is not sound:\n  " + "\n  ".join(problems))
    build(app, topology, settings)
    return app


def main() -> None:
    # The CDK CLI says where to write; run directly, the app writes to cdk.out/.
    make_app(os.environ.get("CDK_OUTDIR", "cdk.out")).synth()


if __name__ == "__main__":
    main()
