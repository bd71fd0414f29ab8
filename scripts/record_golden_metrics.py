"""Record (or check) each pipeline's metrics report under `kedro run --env=test`.

The reports land in ``tests/golden/<pipeline>.json`` together with the machine they were made
on; tests/e2e/test_golden_metrics.py reruns the pipelines and compares. A refactor that keeps
behaviour gives bit-identical reports on the machine that recorded them.

    .venv/bin/python scripts/record_golden_metrics.py            # record every pipeline
    .venv/bin/python scripts/record_golden_metrics.py ctc afm    # record some
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.golden import GOLDEN_DIR, PIPELINE_REPORTS, machine_fingerprint  # noqa: E402
from tests.e2e.project import project_after_run  # noqa: E402


def record(pipeline: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        project = project_after_run(Path(tmp), f"--pipeline={pipeline}", "--env=test")
        reports = {name: json.loads((project / path).read_text())
                   for name, path in PIPELINE_REPORTS[pipeline].items()}
    return {"machine": machine_fingerprint(), "reports": reports}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("pipelines", nargs="*", default=sorted(PIPELINE_REPORTS))
    args = parser.parse_args()
    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    for pipeline in args.pipelines:
        golden = record(pipeline)
        (GOLDEN_DIR / f"{pipeline}.json").write_text(json.dumps(golden, indent=1, sort_keys=True))
        print(f"{pipeline}: {sum(len(r) for r in golden['reports'].values())} figures")


if __name__ == "__main__":
    main()
