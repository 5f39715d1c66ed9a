import base64

import pytest

from chronapilot.common.crypto import TokenCipher, load_or_create_dev_keys
from chronapilot.common.errors import ConfigurationError, CryptoError
from chronapilot.common.settings import CryptoSettings, Environment, Settings

K1, K2 = b"1" * 32, b"2" * 32


def test_a_sealed_token_opens_with_the_same_owner_only():
    cipher = TokenCipher({"k1": K1})
    sealed = cipher.encrypt("ya29.secret", associated_data="con_a")
    assert "ya29" not in sealed
    assert cipher.decrypt(sealed, associated_data="con_a") == "ya29.secret"
    with pytest.raises(CryptoError):
        cipher.decrypt(sealed, associated_data="con_b")


def test_tampering_is_detected():
    cipher = TokenCipher({"k1": K1})
    version, kid, nonce, body = cipher.encrypt("x", associated_data="c").split(".")
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    with pytest.raises(CryptoError):
        cipher.decrypt(".".join((version, kid, nonce, flipped)), associated_data="c")
    with pytest.raises(CryptoError):
        cipher.decrypt("garbage", associated_data="c")


def test_keys_rotate_old_ciphertexts_stay_readable_and_are_resealed_under_the_new_key():
    old = TokenCipher({"k1": K1})
    sealed = old.encrypt("refresh", associated_data="con_a")
    rotated = TokenCipher({"k1": K1, "k2": K2}, active_key_id="k2")
    assert sealed.split(".")[1] == "k1"
    assert rotated.decrypt(sealed, associated_data="con_a") == "refresh"
    resealed = rotated.rotate(sealed, associated_data="con_a")
    assert resealed.split(".")[1] == "k2"
    with pytest.raises(CryptoError):
        old.decrypt(resealed, associated_data="con_a")  # k2 unknown to the old ring


def test_development_keys_are_generated_once_and_shared(tmp_path):
    first = load_or_create_dev_keys(tmp_path)
    second = load_or_create_dev_keys(tmp_path)
    assert first == second
    assert (tmp_path / "encryption-keys").stat().st_mode & 0o777 == 0o600


def test_production_without_a_key_is_a_configuration_error(tmp_path):
    settings = Settings(env=Environment.TEST, run_dir=tmp_path, crypto=CryptoSettings())
    assert TokenCipher.from_settings(settings)  # test/development: generated
    with pytest.raises(ValueError, match="CHRONAPILOT_ENCRYPTION_KEYS"):
        Settings(env=Environment.PRODUCTION, run_dir=tmp_path, crypto=CryptoSettings())
    with pytest.raises(ConfigurationError):
        TokenCipher({})


def test_configured_keys_are_used():
    text = f"a:{base64.b64encode(K1).decode()},b:{base64.b64encode(K2).decode()}"
    settings = Settings(
        env=Environment.PRODUCTION, crypto=CryptoSettings(encryption_keys=text, encryption_active_key_id="b")
    )
    cipher = TokenCipher.from_settings(settings)
    assert cipher.active_key_id == "b"
    assert ".b." in cipher.encrypt("t", associated_data="c")
