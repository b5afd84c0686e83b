"""Configuration: env over `.env` over `.streamlit/secrets.toml`; secrets kept out of reprs."""

from __future__ import annotations

from pathlib import Path

from platformdirs import user_data_path

from mirrago.config import load_settings


def test_nothing_configured_means_the_sandbox_and_a_per_user_data_dir(tmp_path: Path):
    settings = load_settings({}, cwd=tmp_path)

    assert settings.uses_sandbox
    # The same ledger from any folder (once, `mirrago usage` elsewhere showed nothing).
    assert settings.data_dir == user_data_path("mirrago", appauthor=False)
    assert settings.data_dir == load_settings({}, cwd=tmp_path / "elsewhere").data_dir
    assert settings.ledger_url.startswith("sqlite:///")
    assert settings.ledger_url.endswith("/mirrago/ledger.sqlite3")


def test_a_mirrago_folder_in_the_working_directory_is_still_used(tmp_path: Path):
    (tmp_path / ".mirrago").mkdir()
    assert load_settings({}, cwd=tmp_path).data_dir == tmp_path / ".mirrago"


def test_lock_backend_and_retention_days_are_read(tmp_path: Path):
    settings = load_settings(
        {"MIRRAGO_LOCK_BACKEND": "1", "MIRRAGO_RETENTION_DAYS": "30"}, cwd=tmp_path
    )
    assert settings.lock_backend and settings.retention_days == 30
    assert not load_settings({}, cwd=tmp_path).lock_backend


def test_environment_wins_over_dotenv_which_wins_over_secrets(tmp_path: Path):
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text(
        'MIRRAGO_BASE_URL = "https://from-secrets.example"\n'
        'MIRRAGO_CLIENT_ID = "secrets-id"\n'
        '[mirrago]\nclient_secret = "secrets-secret"\n'
    )
    (tmp_path / ".env").write_text("MIRRAGO_CLIENT_ID=dotenv-id\n")

    settings = load_settings({"MIRRAGO_BASE_URL": "https://from-env.example/"}, cwd=tmp_path)

    assert settings.base_url == "https://from-env.example"
    assert settings.client_id == "dotenv-id"
    assert settings.client_secret == "secrets-secret"
    assert not settings.uses_sandbox


def test_database_url_overrides_the_sqlite_file(tmp_path: Path):
    url = "postgresql+psycopg://user@localhost/mirrago"

    settings = load_settings({"MIRRAGO_DATABASE_URL": url}, cwd=tmp_path)

    assert settings.ledger_url == url


def test_relative_data_dir_is_resolved_against_the_working_directory(tmp_path: Path):
    settings = load_settings({"MIRRAGO_DATA_DIR": "elsewhere"}, cwd=tmp_path)

    assert settings.data_dir == tmp_path / "elsewhere"


def test_the_secret_is_not_in_the_repr(tmp_path: Path):
    settings = load_settings({"MIRRAGO_CLIENT_SECRET": "s3cr3t-value"}, cwd=tmp_path)

    assert "s3cr3t-value" not in repr(settings)


def test_a_broken_secrets_file_is_ignored(tmp_path: Path):
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text("this is = = not toml")

    settings = load_settings({}, cwd=tmp_path)

    assert settings.uses_sandbox


def test_the_embedded_sandbox_latency_is_a_number_or_a_range(tmp_path: Path):
    def latency(text: str) -> tuple[float, float] | None:
        return load_settings({"MIRRAGO_SANDBOX_LATENCY": text}, cwd=tmp_path).sandbox_latency

    assert latency("8") == (8.0, 8.0)
    assert latency("2-5") == (2.0, 5.0)
    assert latency("5-2") is None and latency("slow") is None
    assert load_settings({}, cwd=tmp_path).sandbox_latency is None
