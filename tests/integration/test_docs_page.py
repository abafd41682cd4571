"""``/docs`` in a real browser: headless Chromium (Debian's ``chromium``) renders the page, Swagger UI
loads ``/openapi.json`` from the gateway, and every route of the document is listed."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gateway import openapi
from tests.support.gateway import running_gateway

pytestmark = pytest.mark.integration


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if found is None:
        reason = "no Chromium (Debian: apt-get install chromium)"
        # CI installs it: there a missing browser is a broken set-up, never a pass.
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"the /docs browser test cannot run under CI: {reason}")
        pytest.skip(f"the /docs browser test SKIPPED: {reason}")
    return found


def rendered(browser: str, url: str, profile: Path) -> str:
    """The page's DOM once its scripts have run (virtual time lets them finish without waiting)."""
    out = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         f"--user-data-dir={profile}", "--virtual-time-budget=20000", "--dump-dom", url],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


async def test_the_docs_page_lists_every_route_of_the_document(kafka_bootstrap: str, tmp_path: Path) -> None:
    browser = chromium()
    async with running_gateway(kafka_bootstrap, [], tmp_path) as gw:
        dom = await asyncio.to_thread(
            rendered, browser, f"http://{gw.host}:{gw.port}/docs", tmp_path / "profile"
        )
    listed = set(re.findall(r'data-path="([^"]+)"', dom))
    document = openapi.build()
    assert listed == set(document["paths"]), (sorted(listed), dom[:2000])
    # Each operation is shown with its method, as documented.
    for path, operations in document["paths"].items():
        for method in operations:
            assert re.search(rf'opblock-{method}\b[^>]*>.*?data-path="{re.escape(path)}"', dom, re.S), (
                method,
                path,
            )
