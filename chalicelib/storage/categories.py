"""Table `categories`: the 3-level category tree (a few dozen items at most).

Each category stores its `path` (ancestors root first, itself last), so listing a product under
its category and every ancestor needs one GetItem, not a walk up the tree. Categories are never
deleted; a move (PATCH /v1/admin/categories/{id}, services/categories_admin.py) rewrites the
paths of the moved subtree in one transaction conditioned on each category's version and on the
new parent's, then re-paths the products (each product write rewrites its listing items).
A `hidden` category stays with its products but buyers no longer see it nor list by it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pynamodb.attributes import BooleanAttribute, ListAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.storage.base import (ConditionFailed, TableMeta, condition_failure_as, set_given, table_name,
                                     version_as_read)

MAX_LEVEL = 3


class CategoryRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("categories")

    category_id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute()
    parent_id = UnicodeAttribute(null=True)
    level = NumberAttribute()  # 1, 2 or 3
    sort_order = NumberAttribute(default=0)
    path = ListAttribute(of=UnicodeAttribute, default=list)
    hidden = BooleanAttribute(null=True)
    # hidden, or under a hidden category: what buyers' lists check, in the one GetItem they make
    # (kept over the subtree by every merchant edit, in the edit's transaction)
    buyer_hidden = BooleanAttribute(null=True)
    version = NumberAttribute(null=True)  # bumped by every merchant edit: edits are conditioned on it


@dataclass(frozen=True)
class Category:
    category_id: str
    name: str
    parent_id: str | None
    level: int
    sort_order: int
    path: tuple[str, ...]
    hidden: bool = False
    version: int = 0
    buyer_hidden: bool = False


class CategoryMissing(Exception):
    """No category with this id."""


def _to_category(record: CategoryRecord) -> Category:
    path = tuple(record.path or ()) or ((record.parent_id, record.category_id) if record.parent_id
                                         else (record.category_id,))
    return Category(category_id=record.category_id, name=record.name, parent_id=record.parent_id,
                    level=int(record.level), sort_order=int(record.sort_order or 0), path=path,
                    hidden=bool(record.hidden), version=int(record.version or 0),
                    buyer_hidden=bool(record.buyer_hidden))


def _as_read(category: Category):
    return version_as_read(CategoryRecord, category.version)


def write_categories(writes: list[tuple[Category, dict[str, Any]]], parent: Category | None = None) -> None:
    """One transaction: each category's new field values (a None parent_id makes it a root), each
    conditioned on its version as read and bumping it, with the new parent's version checked too
    (so a concurrent move cannot make a cycle). ConditionFailed otherwise."""
    from pynamodb.exceptions import TransactWriteError

    try:
        with TransactWrite(connection=CategoryRecord._get_connection().connection) as transaction:
            for category, fields in writes:
                values = {**fields, "path": list(fields["path"])} if "path" in fields else dict(fields)
                actions = [CategoryRecord.version.set(category.version + 1),
                           *set_given(CategoryRecord, {k: v for k, v in values.items() if k != "parent_id"})]
                if "parent_id" in values:
                    actions.append(CategoryRecord.parent_id.set(values["parent_id"]) if values["parent_id"]
                                   else CategoryRecord.parent_id.remove())
                transaction.update(CategoryRecord(category.category_id), actions=actions, condition=_as_read(category))
            if parent is not None:
                transaction.condition_check(CategoryRecord, parent.category_id, condition=_as_read(parent))
    except TransactWriteError as error:
        raise ConditionFailed("the categories changed meanwhile") from error


def create_category(category_id: str, name: str, parent_id: str | None, level: int, sort_order: int = 0,
                    path: list[str] | None = None, buyer_hidden: bool = False) -> Category:
    """Create a category (ConditionFailed if the id exists). Without `path`, it is the parent's
    path plus this id (CategoryMissing if the parent does not exist)."""
    if path is None:
        path = [*get_category(parent_id).path, category_id] if parent_id else [category_id]
    record = CategoryRecord(category_id, name=name, parent_id=parent_id, level=level, sort_order=sort_order,
                            path=list(path), buyer_hidden=buyer_hidden or None)
    with condition_failure_as(ConditionFailed):
        record.save(condition=CategoryRecord.category_id.does_not_exist())
    return _to_category(record)


def get_category(category_id: str, consistent: bool = False) -> Category:
    try:
        return _to_category(CategoryRecord.get(category_id, consistent_read=consistent))
    except CategoryRecord.DoesNotExist:
        raise CategoryMissing(category_id) from None


def list_categories(consistent: bool = False) -> list[Category]:
    """Every category: one Scan (paged by PynamoDB) of a table that holds a few dozen items."""
    return [_to_category(record) for record in CategoryRecord.scan(consistent_read=consistent)]
