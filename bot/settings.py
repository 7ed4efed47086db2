"""Deskmate's configuration: one object, read from the environment.

Every default runs the demo on one machine; each can be overridden with a
``DESKMATE_*`` environment variable (see README, "Configuration").
"""
from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import BaseSettings, Field

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Deskmate settings; field ``x`` is read from ``DESKMATE_X``."""

    project_root: Path = PROJECT_ROOT
    kb_dir: Path = PROJECT_ROOT / "kb"
    var_dir: Path = PROJECT_ROOT / "var"
    spacy_model_dir: Path = PROJECT_ROOT / "var" / "spacy" / "deskmate_en"
    entity_patterns_file: Path = PROJECT_ROOT / "kb" / "entity_patterns.yml"

    rasa_url: str = "http://127.0.0.1:5005"
    rasa_token: str = Field("", description="Rasa HTTP API token; generated into var/ when empty")
    action_host: str = "127.0.0.1"
    action_port: int = 5055

    # An article's fused score is its response-selector confidence plus
    # search_weight x its KB-search similarity; the best is answered only when
    # its score is >= answer_threshold and leads the runner-up by answer_margin.
    # Chosen on tests/eval/dev.yml (see README, "Tuning").
    search_weight: float = 2.0
    answer_threshold: float = 0.6
    answer_margin: float = 0.1
    # KB search: the least cosine similarity for an article to be suggested.
    suggest_min_score: float = 0.05
    suggest_count: int = 3

    max_message_chars: int = 1000

    database_url: str = ""

    class Config:
        env_prefix = "DESKMATE_"

    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file under var/."""
        return self.database_url or f"sqlite:///{self.var_dir / 'deskmate.db'}"

    def resolved_rasa_token(self) -> str:
        """The Rasa HTTP API token: the setting, or one generated once into var/."""
        if self.rasa_token:
            return self.rasa_token
        token_file = self.var_dir / "rasa-token"
        if not token_file.exists():
            token_file.parent.mkdir(parents=True, exist_ok=True)
            token_file.write_text(secrets.token_urlsafe(32))
            token_file.chmod(0o600)
        return token_file.read_text().strip()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
