"""``python -m conveyor.infra.app``: synthesize the stacks into ``cdk.out``.

Context (``cdk -c name=value`` or ``cdk.json``): ``region``, ``account``,
``availability_zones`` (two, comma-separated), ``certificate_arn`` (HTTPS listener),
``alarm_email`` (subscribed to the ops topic).
"""

from __future__ import annotations

import os
from pathlib import Path

from aws_cdk import App

from conveyor.infra.settings import LAYERS_DIR, Settings
from conveyor.infra.stacks import build
from conveyor.topology import TOPOLOGY


def make_app(outdir: str | None = None, layers_dir: Path = LAYERS_DIR) -> App:
    app = App(outdir=outdir) if outdir else App()
    problems = TOPOLOGY.problems()
    if problems:
        raise SystemExit("the topology is not sound:\n  " + "\n  ".join(problems))
    build(app, TOPOLOGY, Settings.from_app(app, layers_dir))
    return app


def main() -> None:
    os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    make_app().synth()


if __name__ == "__main__":
    main()
