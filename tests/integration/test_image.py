"""The container image (Dockerfile): built and smoke-checked where a Docker engine is present; this
machine's CI has none, so there the test is skipped and says so."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.support.kafka import ROOT, docker_available

pytestmark = pytest.mark.integration

IMAGE = "ingest-gateway:test"


@pytest.fixture(scope="module")
def image() -> str:
    if shutil.which("docker") is None or not docker_available():
        pytest.skip("no Docker engine here: the image is built and checked where one is present")
    subprocess.run(["docker", "build", "-t", IMAGE, str(ROOT)], check=True, timeout=1200)
    return IMAGE


def run(
    image: str, *args: str, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    flags = [f"--env={k}={v}" for k, v in (env or {}).items()]
    return subprocess.run(
        ["docker", "run", "--rm", "-i", "--read-only", "--tmpfs", "/tmp", *flags, image, *args],
        input=stdin, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_every_program_is_in_the_image_and_runs_as_a_non_root_user(image: str) -> None:
    assert run(image, "id", "-u").stdout.strip() == "10001"
    out = run(
        image, "python", "-c", "import gateway.app, consumers.sink.app, consumers.importer.app; print('ok')"
    )
    assert out.stdout.strip() == "ok", out.stderr
    hashed = run(image, "ingest-auth", "hash", stdin="test\n")
    assert hashed.stdout.strip() == "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


@pytest.mark.parametrize(
    ("program", "variable"),
    [("ingest-gateway", "GATEWAY_PORT"), ("ingest-sink", "SINK_PORT"), ("ingest-importer", "IMPORTER_PORT")],
)
def test_each_program_reads_its_settings_and_the_shipped_registry(
    image: str, program: str, variable: str
) -> None:
    # A bad setting stops the program at once, after it found the schemas and topics.yaml.
    out = run(image, program, env={variable: "not-a-port"})
    assert out.returncode == 2, out.stderr
    assert variable in out.stderr
    topics = run(image, "ingest-topics", "check")
    assert (topics.returncode, "entity\tcustomers\tentity.customers" in topics.stdout) == (0, True), topics
