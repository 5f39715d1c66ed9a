import pytest
from pydantic import ValidationError

from chronapilot.common.service import describe_validation_error
from chronapilot.common.settings import KafkaSettings, MongoSettings, Settings, setting_env_names


def test_standard_names_and_prefixed_names_are_read(monkeypatch):
    monkeypatch.setenv("MONGODB_URI", "mongodb://db.example:27018/?replicaSet=rs0")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    monkeypatch.setenv("CHRONAPILOT_API_PORT", "9999")
    monkeypatch.setenv("CHRONAPILOT_KAFKA_TOPIC_PREFIX", "acme")
    monkeypatch.setenv("CHRONAPILOT_GOOGLE_API_URL", "http://127.0.0.1:8090/calendar/v3/")
    settings = Settings()
    assert settings.mongo.uri.startswith("mongodb://db.example:27018")
    assert settings.kafka.bootstrap_servers == "k1:9092,k2:9092"
    assert settings.kafka.topic_prefix == "acme"
    assert settings.service.api_port == 9999
    assert settings.providers.google_api_url == "http://127.0.0.1:8090/calendar/v3"


@pytest.mark.parametrize(
    ("model", "kwargs", "needle"),
    [
        (MongoSettings, {"uri": "http://nope"}, "MONGODB_URI"),
        (KafkaSettings, {"bootstrap_servers": "no-port"}, "KAFKA_BOOTSTRAP_SERVERS"),
    ],
)
def test_bad_values_are_named_by_their_environment_variable(model, kwargs, needle):
    with pytest.raises(ValidationError) as caught:
        model(**kwargs)
    assert needle in describe_validation_error(caught.value)


def test_every_setting_has_a_description():
    names = setting_env_names()
    assert "MONGODB_URI" in names and "KAFKA_BOOTSTRAP_SERVERS" in names
    assert "CHRONAPILOT_GOOGLE_AUTH_URL" in names and "CHRONAPILOT_ICLOUD_CALDAV_URL" in names
    assert all(description for _, description in names.values())


def test_an_idempotency_lock_shorter_than_the_store_timeout_is_refused(monkeypatch):
    monkeypatch.setenv("CHRONAPILOT_IDEMPOTENCY_LOCK_S", "20")
    with pytest.raises(ValidationError, match="CHRONAPILOT_IDEMPOTENCY_LOCK_S"):
        Settings()
    monkeypatch.setenv("CHRONAPILOT_MONGODB_OPERATION_TIMEOUT_S", "10")
    assert Settings().service.idempotency_lock_s == 20
