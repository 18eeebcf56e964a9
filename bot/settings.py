"""The one Settings class, read from the environment and ``.env``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting Condensa reads; ``.env.example`` documents each one."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    telegram_bot_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org"
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_listen: str = "0.0.0.0"  # noqa: S104 - webhook mode must accept Telegram's calls
    webhook_port: int = Field(default=8443, ge=1, le=65535)
    data_dir: Path = Path("./data")
    storage_key: SecretStr | None = None
    database_url: SecretStr | None = None
    redis_url: SecretStr | None = None
    redis_prefix: str = "condensa"
    queue_partitions: int = Field(default=16, ge=1, le=1024)
    worker_lease_seconds: float = Field(default=10.0, ge=1.0)
    outbound_per_second: int = Field(default=30, ge=1)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    playground_host: str = "127.0.0.1"
    playground_port: int = Field(default=8080, ge=0, le=65535)
    health_port: int = Field(default=8081, ge=0, le=65535)
    health_listen: str = "127.0.0.1"
    max_updates_in_hand: int = Field(default=2000, ge=10)
    database_command_timeout: float = Field(default=30.0, gt=0)
    database_acquire_timeout: float = Field(default=10.0, gt=0)
    redis_socket_timeout: float = Field(default=30.0, gt=0)

    auto_summary_min_chars: int = Field(default=600, ge=1)
    forward_batch_seconds: float = Field(default=2.0, ge=0.0)
    forward_batch_max_messages: int = Field(default=50, ge=1)
    max_input_chars: int = Field(default=100_000, ge=1000)
    max_file_bytes: int = Field(default=20 * 1024 * 1024, ge=1)
    parse_timeout_seconds: float = Field(default=20.0, gt=0)
    fetch_allow_private: bool = False
    fetch_allowed_addresses: list[str] = Field(default_factory=list)
    fetch_max_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    fetch_timeout_seconds: float = Field(default=15.0, gt=0)
    fetch_max_redirects: int = Field(default=5, ge=0, le=20)
    parse_memory_mb: int = Field(default=1024, ge=32)
    default_method: str = "extractive:auto"
    grounding: Literal["mark", "drop", "off"] = "mark"
    model_workers: int = Field(default=1, ge=1)
    model_threads: int = Field(default=0, ge=0)
    model_queue: int = Field(default=1000, ge=0)
    model_max_wait: float = Field(default=45.0, gt=0)
    shutdown_seconds: float = Field(default=10.0, gt=0)
    keywords_top_n: int = Field(default=10, ge=1, le=30)
    keywords_model_en: Literal["minilm", "e5"] = "minilm"
    embeddings_runtime: Literal["onnx", "torch"] = "onnx"
    derived_models_dir: Path | None = None
    keywords_model_es: Literal["minilm", "e5"] = "e5"
    keywords_model_other: Literal["minilm", "e5"] = "e5"
    keywords_max_candidates: int = Field(default=30, ge=5, le=1000)
    keywords_diversification: Literal["mmr", "maxsum"] = "mmr"
    keywords_diversity: float = Field(default=0.2, ge=0.0, le=1.0)

    allowed_users: str = ""
    allowed_chats: str = ""
    admin_users: str = ""
    quota_user_requests: int = Field(default=200, ge=0)
    quota_user_chars: int = Field(default=2_000_000, ge=0)
    quota_user_tokens: int = Field(default=50_000, ge=0)
    quota_group_requests: int = Field(default=1_000, ge=0)
    quota_group_chars: int = Field(default=10_000_000, ge=0)
    quota_group_tokens: int = Field(default=200_000, ge=0)

    digest_retention_days: int = Field(default=7, ge=1, le=3650)
    digest_max_messages: int = Field(default=20_000, ge=10, le=200_000)
    digest_topic_method: Literal["nmf", "lda"] = "nmf"
    digest_keyphrases: int = Field(default=10, ge=3, le=30)
    catchup_after_hours: float = Field(default=24.0, gt=0)

    abstractive_model_en: str = "sshleifer/distilbart-cnn-12-6"
    abstractive_model_es: str = "csebuetnlp/mT5_multilingual_XLSum"
    abstractive_model_other: str = "csebuetnlp/mT5_multilingual_XLSum"
    abstractive_num_beams: int = Field(default=4, ge=1, le=16)
    abstractive_max_new_tokens: int = Field(default=142, ge=8, le=1024)
    abstractive_min_new_tokens: int = Field(default=56, ge=0, le=1024)
    abstractive_chunk_tokens: int = Field(default=900, ge=32, le=16384)
    model_downloads: bool = False

    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    llm_server_model: str = ""
    llm_timeout_seconds: float = Field(default=60.0, gt=0)
    llm_context_tokens: int = Field(default=4096, ge=256)
    llm_engine: Literal["auto", "llama.cpp", "transformers"] = "auto"
    llm_model: str = "smollm2"
    llm_dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    llm_shipped_weights: Literal["q8_0", "q4_1"] = "q8_0"
    llm_max_new_tokens: int = Field(default=256, ge=1, le=4096)
    llm_temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    llm_max_prompt_tokens: int = Field(default=1536, ge=64, le=32768)
    llm_max_concurrency: int = Field(default=1, ge=1)
    llm_queue: int = Field(default=2, ge=0)
    stream_edit_seconds_private: float = Field(default=1.0, ge=0.05)
    stream_edit_seconds_group: float = Field(default=3.0, ge=0.05)

    stt_base_url: str | None = None
    stt_api_key: SecretStr | None = None
    stt_model: str = "whisper-1"
    stt_timeout_seconds: float = Field(default=300.0, gt=0)
    whisper_model: str = "base"
    whisper_languages: str = "en,es,pt,fr,de,it,ca,nl"
    whisper_threads: int = Field(default=0, ge=0)
    whisper_beam_size: int = Field(default=1, ge=1, le=10)
    max_audio_seconds: float = Field(default=1200.0, gt=0)
    speech_queue: int = Field(default=4, ge=0)
    max_ocr_pages: int = Field(default=10, ge=1, le=200)
    max_image_pixels: int = Field(default=40_000_000, ge=1_000_000)
    ocr_min_confidence: float = Field(default=60.0, ge=0.0, le=100.0)

    @field_validator("telegram_api_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("TELEGRAM_API_URL must start with http:// or https://")
        return value.rstrip("/")

    @field_validator(
        "telegram_bot_token",
        "webhook_secret",
        "storage_key",
        "llm_api_key",
        "stt_api_key",
        "database_url",
        "redis_url",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator(
        "webhook_url", "llm_base_url", "stt_base_url", "derived_models_dir", mode="before"
    )
    @classmethod
    def _empty_url_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Settings:
        if self.webhook_url and self.webhook_secret is None:
            raise ValueError(
                "WEBHOOK_SECRET is required when WEBHOOK_URL is set "
                "(1-256 characters: letters, digits, _ and -)"
            )
        return self

    @property
    def bot_api_base_url(self) -> str:
        """Root of the Bot API methods (the token is appended)."""
        return f"{self.telegram_api_url}/bot"

    @property
    def bot_api_file_url(self) -> str:
        """Root of file downloads (the token is appended)."""
        return f"{self.telegram_api_url}/file/bot"

    @property
    def model_cache_dir(self) -> Path:
        """Where downloaded models are kept."""
        return self.data_dir / "models" / "hub"

    @property
    def llm_cache_dir(self) -> Path:
        """Where converted LLMs (and adapted ones) are kept."""
        return self.data_dir / "models"

    @property
    def database_path(self) -> Path:
        """The SQLite file with per-chat state."""
        return self.data_dir / "condensa.sqlite3"
