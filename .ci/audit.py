"""Known vulnerabilities in the installed dependency set (`make audit`, run by CI after the tests).

Runs pip-audit over the virtual environment (the project itself, an editable install, aside)
and prints what it found: each vulnerable package with the advisory and the versions that fix
it, and how many packages the index could not answer for. It reports and exits 0: a finding
is for a person to weigh (upgrade, or note why it does not apply), and a vulnerability service
that cannot be reached (no network) is a warning, not a failed build.
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

TIMEOUT_SECONDS = 300


def report(dependencies: list[dict[str, Any]]) -> list[str]:
    """The lines to print for pip-audit's JSON report (its `dependencies`)."""
    skipped = [d for d in dependencies if "skip_reason" in d]
    vulnerable = [d for d in dependencies if d.get("vulns")]
    audited = len(dependencies) - len(skipped)
    lines = [f"audit: {audited} of {len(dependencies)} installed packages checked against the vulnerability service"]
    if skipped:
        names = ", ".join(d["name"] for d in skipped[:10]) + (", …" if len(skipped) > 10 else "")
        lines.append(f"audit: warning: the index did not answer for {len(skipped)} packages ({names})")
    for dep in vulnerable:
        for vuln in dep["vulns"]:
            fix = ", ".join(vuln.get("fix_versions") or []) or "no fixed version yet"
            aliases = ", ".join(vuln.get("aliases") or [])
            named = f"{vuln['id']} ({aliases})" if aliases else vuln["id"]
            lines.append(f"audit: {dep['name']} {dep['version']}: {named}; fixed in {fix}")
            if vuln.get("description"):
                lines.append(f"       {' '.join(vuln['description'].split())[:300]}")
    found = sum(len(d["vulns"]) for d in vulnerable)
    if found:
        lines.append(f"audit: {found} known vulnerabilities in {len(vulnerable)} packages")
    elif audited:
        lines.append("audit: no known vulnerabilities")
    else:
        lines.append("audit: warning: nothing could be checked")
    return lines


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp) / "audit.json"
        command = [sys.executable, "-m", "pip_audit", "--progress-spinner", "off", "--skip-editable"]
        command += ["--desc", "on", "--aliases", "on", "--format", "json", "--output", str(output)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            print(f"audit: warning: pip-audit did not finish within {TIMEOUT_SECONDS} s; nothing was checked")
            return 0
        if not output.is_file():
            # No report at all: the index or the vulnerability service could not be reached.
            why = (done.stderr.strip().splitlines() or ["no answer"])[-1]
            print(f"audit: warning: the vulnerability service could not be reached; nothing was checked ({why})")
            return 0
        dependencies = json.loads(output.read_text())["dependencies"]
    print("\n".join(report(dependencies)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
