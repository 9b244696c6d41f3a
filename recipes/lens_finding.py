"""Lens finding: lens vs non-lens on 3-band (g, r, i) cut-outs, image only vs image + meta features.

    python recipes/lens_finding.py --config recipes/configs/lens_finding_tiny.yaml --output_dir outputs/lf

The work is `hf_deeplense.training.lens_finding` (its module docstring describes the data, the variants and
`comparison.json`); this script runs it and then ends the process group.
"""

from __future__ import annotations

from hf_deeplense.training import end_run, lens_finding


def main(args=None) -> dict:
    results = lens_finding(args)
    end_run()  # destroy the process group while Python is fully alive
    return results


if __name__ == "__main__":
    main()
