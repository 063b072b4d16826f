"""`make audit` (.ci/audit.py): known vulnerabilities reported with their fixes, and a
vulnerability service out of reach a warning, never a failed CI run."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from tests.processes import free_port

SCRIPT = Path(__file__).resolve().parent.parent / ".ci" / "audit.py"


def load_audit():
    spec = importlib.util.spec_from_file_location("audit", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_an_unreachable_vulnerability_service_is_a_warning_not_a_failure(tmp_path):
    # Every request goes to a proxy where nothing listens; an empty cache, so nothing is answered from it.
    nowhere = f"http://127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "http_proxy", "https_proxy")}
    env |= {"HTTPS_PROXY": nowhere, "HTTP_PROXY": nowhere, "XDG_CACHE_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "warning: the vulnerability service could not be reached; nothing was checked" in done.stdout


def test_each_finding_is_printed_with_its_advisory_and_fix():
    report = load_audit().report(
        [
            {
                "name": "jinja2",
                "version": "3.1.2",
                "vulns": [
                    {
                        "id": "GHSA-h5c8-rqwp-cp95",
                        "fix_versions": ["3.1.3"],
                        "aliases": ["CVE-2024-22195"],
                        "description": "The xmlattr filter accepts keys\ncontaining spaces.",
                    },
                ],
            },
            {"name": "httpx", "version": "0.28.1", "vulns": []},
            {"name": "hotline-private", "skip_reason": "Dependency not found on PyPI and could not be audited"},
        ]
    )
    assert report == [
        "audit: 2 of 3 installed packages checked against the vulnerability service",
        "audit: warning: the index did not answer for 1 packages (hotline-private)",
        "audit: jinja2 3.1.2: GHSA-h5c8-rqwp-cp95 (CVE-2024-22195); fixed in 3.1.3",
        "       The xmlattr filter accepts keys containing spaces.",
        "audit: 1 known vulnerabilities in 1 packages",
    ]
    assert load_audit().report([{"name": "httpx", "version": "0.28.1", "vulns": []}])[-1] == (
        "audit: no known vulnerabilities"
    )
