"""``make audit``: pip-audit over the venv's installed distributions (the project's own, installed
editable, is skipped). Fails (exit 1) on a known vulnerability that has a fixed version; one
without a fix is printed and does not fail; exit 2 when the vulnerability service cannot be
reached or pip-audit fails otherwise."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "audit.json"
        run = subprocess.run(  # noqa: S603 (a fixed command line)
            [sys.executable, "-m", "pip_audit", "--skip-editable", "--progress-spinner", "off",
             "-f", "json", "-o", str(report)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if not report.exists() or not report.read_text().strip():
            print(
                f"audit: pip-audit did not report (exit {run.returncode}):\n{run.stderr[-2000:]}",
                file=sys.stderr,
            )
            return 2
        doc = json.loads(report.read_text())
    fixable: list[str] = []
    unfixed: list[str] = []
    for dep in doc.get("dependencies", []):
        for vuln in dep.get("vulns", []):
            fixed = ", ".join(vuln["fix_versions"]) or "none"
            line = f"{dep['name']} {dep['version']}: {vuln['id']} (fixed in: {fixed})"
            (fixable if vuln["fix_versions"] else unfixed).append(line)
    print(f"audit: {len(doc.get('dependencies', []))} distributions checked")
    for line in unfixed:
        print(f"audit: known, no fix released yet: {line}")
    for line in fixable:
        print(f"audit: VULNERABLE, upgrade: {line}")
    return 1 if fixable else 0


if __name__ == "__main__":
    sys.exit(main())
