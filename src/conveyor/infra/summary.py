"""``make synth``'s closing summary: what was built, and where to look next."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from conveyor.infra.layers import LAYERS
from conveyor.infra.settings import LAYERS_DIR


def summary(outdir: Path, layers_dir: Path = LAYERS_DIR) -> list[str]:
    lines = []
    for template in sorted(outdir.glob("*.template.json")):
        resources = json.loads(template.read_text()).get("Resources", {})
        kinds = Counter(resource["Type"].split("::")[1] for resource in resources.values())
        top = ", ".join(f"{n} {kind}" for kind, n in kinds.most_common(4))
        lines.append(f"{template.name}: {len(resources)} resources ({top}, ...)")
    reports = sorted(outdir.glob("AwsSolutions-*-NagReport.csv"))
    lines.append("cdk-nag reports: " + (", ".join(str(r) for r in reports) or "none written"))
    for name in LAYERS:
        built = not (layers_dir / name / "python" / "NOT_BUILT").exists()
        state = "built" if built else "NOT built: run `make build` (make deploy does)"
        lines.append(f"layer {name}: {state}")
    return lines


def main() -> None:
    outdir = Path(sys.argv[1] if len(sys.argv) > 1 else "cdk.out")
    print("\n".join(summary(outdir)))


if __name__ == "__main__":
    main()
