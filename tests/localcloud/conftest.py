from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
MINI_TEMPLATE = ROOT / "tests" / "fixtures" / "mini-template.yaml"
RECORDER_TEMPLATE = FIXTURES / "recorder-template.yaml"
API_TEMPLATE = FIXTURES / "api-template.yaml"
PROJECT_TEMPLATE = ROOT / "template.yaml"


@pytest.fixture(autouse=True, scope="session")
def moto_as_the_local_cloud_runs_it():
    """moto with :mod:`herald_tools.localcloud.moto_patches`, as ``herald local`` runs it."""
    from herald_tools.localcloud import moto_patches

    patched = moto_patches.install()
    yield
    if patched:
        moto_patches.uninstall()


@pytest.fixture(autouse=True)
def aws_test_env(monkeypatch):
    """No real account, ever: test credentials, us-east-1, and the account-id endpoint mode off."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
