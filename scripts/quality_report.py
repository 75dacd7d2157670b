#!/usr/bin/env python
"""Honest quality report of a bundle against baselines on held-out simulated scenes (issue part 8).

    .venv/bin/python scripts/quality_report.py --model hyperldm_engine/data/default_model
    .venv/bin/python scripts/quality_report.py --model BUNDLE --quick --out /tmp/q   # seconds-long smoke run

Writes DIR/quality.json and DIR/quality.md (default DIR reports/quality) and replaces the section
between <!-- quality:start --> and <!-- quality:end --> of benchmarks/RESULTS.md (not with --quick,
unless --results-md is given). Rows: (a) VQGAN reconstruction, (b) diffusion synthesis (1 sample and
the mean of K) through synthesize_scene, (c) ridge regression, (d) a residual CNN trained for
--budget-minutes, (e) VQGANs with and without the RGB condition, and the 512 x 512 synthesis time.
About 20 minutes on 2 CPU cores by default.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="bundle folder or .zip (default: the bundled default model)")
    ap.add_argument("--scenes", type=int, help="held-out scenes (default 3; GSDs 1, 5, 20, 2, 10 m ...)")
    ap.add_argument("--size", type=int, help="held-out scene side in pixels (default 128)")
    ap.add_argument("--samples", type=int, help="K samples per scene for the mean row (default 5)")
    ap.add_argument("--budget-minutes", type=float, help="residual CNN training budget (default 6)")
    ap.add_argument("--ablation-minutes", type=float, help="budget of the two ablation VQGANs together (default 6)")
    ap.add_argument("--cnn-iterations", type=int, help="fixed CNN iterations (overrides --budget-minutes)")
    ap.add_argument("--ablation-iterations", type=int, help="fixed stage-1 iterations of the ablation VQGANs")
    ap.add_argument("--cnn-width", type=int, help="CNN channels (default 48)")
    ap.add_argument("--cnn-blocks", type=int, help="CNN residual blocks (default 6)")
    ap.add_argument("--timing-size", type=int, help="side of the timed synthesis scene (default 512)")
    ap.add_argument("--threads", type=int, help="torch CPU threads (default 2)")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--device", help="cpu (default), cuda or auto")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "quality", help="output folder")
    ap.add_argument("--results-md", type=Path, default=None,
                    help="Markdown file for the quality section (default benchmarks/RESULTS.md; none with --quick)")
    ap.add_argument("--quick", action="store_true", help="seconds-long smoke run with tiny budgets")
    ap.add_argument("--progress", default="bar", choices=["bar", "json", "none"])
    args = ap.parse_args(argv)

    from hyperldm_engine.errors import HyperLDMError
    from hyperldm_engine.experiments.quality import QualitySettings, command_line, run_quality_report

    names = {"scenes": "scenes", "size": "size", "samples": "samples", "budget_minutes": "budget_minutes",
             "ablation_minutes": "ablation_minutes", "cnn_iterations": "cnn_iterations",
             "ablation_iterations": "ablation_iterations", "cnn_width": "cnn_width", "cnn_blocks": "cnn_blocks",
             "timing_size": "timing_size", "threads": "threads", "seed": "seed", "device": "device"}
    given = {field: getattr(args, arg) for arg, field in names.items() if getattr(args, arg) is not None}
    settings = QualitySettings.quick_settings(**given) if args.quick else QualitySettings(**given)
    results_md = args.results_md or (None if args.quick else ROOT / "benchmarks" / "RESULTS.md")
    try:
        report = run_quality_report(args.model, args.out, settings, results_md=results_md,
                                    command=command_line(argv), progress=args.progress)
    except HyperLDMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    for key, row in report["rows"].items():
        print(f"{key:24s} MPSNR {row['mpsnr']:6.2f} dB  SAM {row['sam']:.4f}  MRAE {row['mrae']:.4f}  "
              f"RMSE {row['rmse']:.4f}  MSSIM {row['mssim']:.4f}")
    print(f"{settings.timing_size} px synthesis: {report['timing']['seconds']:.1f} s; wrote {args.out}/quality.json"
          + (f" and {results_md}" if results_md else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
