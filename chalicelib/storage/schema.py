"""Creates every table of the stack (idempotent): used by `make tables`, the local stack and tests."""
from __future__ import annotations

from pynamodb.models import Model

from chalicelib.storage.admins import AdminRecord
from chalicelib.storage.credentials import CredentialRecord
from chalicelib.storage.sessions import SessionRecord
from chalicelib.storage.users import UserRecord

ALL_MODELS: tuple[type[Model], ...] = (UserRecord, SessionRecord, CredentialRecord, AdminRecord)

# Tables whose items expire through DynamoDB TTL, and the attribute that holds the epoch time.
TTL_ATTRIBUTES: dict[type[Model], str] = {SessionRecord: "expires_at", CredentialRecord: "expires_at"}


def create_all_tables() -> list[str]:
    """Create missing tables (on-demand billing) and switch on TTL; returns the names created."""
    created = []
    for model in ALL_MODELS:
        if not model.exists():
            model.create_table(wait=True, billing_mode="PAY_PER_REQUEST")
            created.append(model.Meta.table_name)
        ttl_attribute = TTL_ATTRIBUTES.get(model)
        if ttl_attribute:
            _enable_ttl(model, ttl_attribute)
    return created


def _enable_ttl(model: type[Model], attribute: str) -> None:
    client = model._get_connection().connection.client
    current = client.describe_time_to_live(TableName=model.Meta.table_name)
    if current.get("TimeToLiveDescription", {}).get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
        return
    client.update_time_to_live(TableName=model.Meta.table_name,
                               TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute})


def delete_all_tables() -> None:
    """Tests only: drop every table of this prefix."""
    for model in ALL_MODELS:
        if model.exists():
            model.delete_table()


def reset_connections() -> None:
    """Forget cached clients, for tools and tests that switch endpoints (moto <-> DynamoDB Local)."""
    for model in ALL_MODELS:
        model._connection = None
