"""PyMongo's errors become ChronaPilot's at the store boundary (``translate_errors``)."""

from __future__ import annotations

import pytest
from pymongo.errors import (
    AutoReconnect,
    DuplicateKeyError,
    ExecutionTimeout,
    NetworkTimeout,
    OperationFailure,
    ServerSelectionTimeoutError,
    WTimeoutError,
)

from chronapilot.common.errors import Conflict, StoreError
from chronapilot.common.store.client import translate_errors


def translated(error: Exception) -> BaseException:
    with pytest.raises(BaseException) as caught, translate_errors():
        raise error
    return caught.value


@pytest.mark.parametrize(
    "error",
    [
        NetworkTimeout("connection to 127.0.0.1:27017 timed out"),
        ExecutionTimeout("operation exceeded time limit", code=50),
        WTimeoutError("waiting for replication timed out", code=64),
    ],
    ids=["network", "execution", "write-concern"],
)
def test_an_operation_past_its_timeout_is_a_store_timeout(error):
    assert error.timeout  # what PyMongo says of every error a timeoutMS ends
    result = translated(error)
    assert isinstance(result, StoreError)
    assert result.code == "store_timeout"
    assert type(error).__name__ in result.message
    assert result.__cause__ is error


@pytest.mark.parametrize(
    "error",
    [ServerSelectionTimeoutError("no server"), AutoReconnect("connection reset")],
    ids=["server-selection", "connection-lost"],
)
def test_an_unreachable_server_is_store_unavailable(error):
    result = translated(error)
    assert isinstance(result, StoreError)
    assert result.code == "store_unavailable"
    assert "unreachable" in result.message


def test_a_transient_transaction_error_is_store_unavailable_and_other_failures_are_store_failed():
    transient = OperationFailure("write conflict", code=112)
    transient._add_error_label("TransientTransactionError")
    assert translated(transient).code == "store_unavailable"
    bad_query = OperationFailure("unknown operator: $nope", code=2)
    result = translated(bad_query)
    assert result.code == "store_failed" and result.__cause__ is bad_query


def test_a_duplicate_key_is_a_conflict():
    error = DuplicateKeyError("E11000", code=11000, details={"keyValue": {"state": "x"}})
    result = translated(error)
    assert isinstance(result, Conflict)
    assert "state" in result.message
