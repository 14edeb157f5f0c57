from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from deploy.settings import Settings, SettingsError, describe


def test_defaults_use_the_embedded_services_and_the_sdoh_prefix() -> None:
    settings = Settings.from_env({})
    assert settings.kafka_bootstrap is None
    assert settings.database_url is None
    assert settings.topic_prefix == "sdoh"
    assert settings.kafka_port == 9092
    assert settings.default_response_sla == timedelta(hours=24)


def test_variables_are_read_with_their_types() -> None:
    settings = Settings.from_env(
        {
            "REFNET_KAFKA_BOOTSTRAP": "kafka-1:9092,kafka-2:9092",
            "REFNET_PARTITIONS": "12",
            "REFNET_DATA_DIR": "/srv/refnet",
            "REFNET_DEFAULT_RESPONSE_SLA": "P2D",
            "REFNET_DATABASE_URL": "",
        }
    )
    assert settings.kafka_bootstrap == "kafka-1:9092,kafka-2:9092"
    assert settings.partitions == 12
    assert settings.data_dir == Path("/srv/refnet")
    assert settings.default_response_sla == timedelta(days=2)
    assert settings.database_url is None  # empty means unset


def test_a_bad_value_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="REFNET_PARTITIONS"):
        Settings.from_env({"REFNET_PARTITIONS": "many"})


def test_an_unknown_variable_is_an_error_not_silently_ignored() -> None:
    with pytest.raises(SettingsError, match="REFNET_KAFKA_BOOTSTRAPS"):
        Settings.from_env({"REFNET_KAFKA_BOOTSTRAPS": "x:1"})


def test_the_scripts_own_variable_is_not_a_setting() -> None:
    assert Settings.from_env({"REFNET_VENV": "/opt/refnet/.venv"}) == Settings.from_env({})


def test_every_setting_is_described() -> None:
    rows = describe()
    assert {name for name, _, _ in rows} == {"REFNET_" + n.upper() for n in Settings.model_fields}
    assert all(text for _, _, text in rows)
