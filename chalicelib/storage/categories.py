"""Table `categories`: the 3-level category tree (a few dozen items at most).

Each category stores its `path` (ancestors root first, itself last), so listing a product under
its category and every ancestor needs one GetItem, not a walk up the tree. Categories are never
moved or deleted (there is no route for it), so a path, once written, stays true.
"""
from __future__ import annotations

from dataclasses import dataclass

from pynamodb.attributes import ListAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib.storage.base import ConditionFailed, TableMeta, condition_failure_as, table_name

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


@dataclass(frozen=True)
class Category:
    category_id: str
    name: str
    parent_id: str | None
    level: int
    sort_order: int
    path: tuple[str, ...]


class CategoryMissing(Exception):
    """No category with this id."""


def _to_category(record: CategoryRecord) -> Category:
    path = tuple(record.path or ()) or ((record.parent_id, record.category_id) if record.parent_id
                                         else (record.category_id,))
    return Category(category_id=record.category_id, name=record.name, parent_id=record.parent_id,
                    level=int(record.level), sort_order=int(record.sort_order or 0), path=path)


def create_category(category_id: str, name: str, parent_id: str | None, level: int, sort_order: int = 0,
                    path: list[str] | None = None) -> Category:
    """Create a category (ConditionFailed if the id exists). Without `path`, it is the parent's
    path plus this id (CategoryMissing if the parent does not exist)."""
    if path is None:
        path = [*get_category(parent_id).path, category_id] if parent_id else [category_id]
    record = CategoryRecord(category_id, name=name, parent_id=parent_id, level=level, sort_order=sort_order,
                            path=list(path))
    with condition_failure_as(ConditionFailed):
        record.save(condition=CategoryRecord.category_id.does_not_exist())
    return _to_category(record)


def get_category(category_id: str) -> Category:
    try:
        return _to_category(CategoryRecord.get(category_id))
    except CategoryRecord.DoesNotExist:
        raise CategoryMissing(category_id) from None


def list_categories() -> list[Category]:
    """Every category: one Scan (paged by PynamoDB) of a table that holds a few dozen items."""
    return [_to_category(record) for record in CategoryRecord.scan()]
