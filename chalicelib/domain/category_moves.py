"""Rules of the merchant's category edits: a move keeps the tree at most MAX_LEVEL deep and
without cycles, and re-paths the moved category's whole subtree; a hidden category hides its
descendants from buyers too."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from chalicelib.errors import BadRequest, NotFound

MAX_LEVEL = 3


@dataclass(frozen=True)
class Placed:
    category_id: str
    parent_id: str | None
    level: int
    path: tuple[str, ...]


def subtree(parents: dict[str, str | None], root: str) -> list[str]:
    """`root` and every descendant, parents before children (bounded: each id visited once)."""
    children: dict[str, list[str]] = {}
    for category_id, parent_id in parents.items():
        if parent_id:
            children.setdefault(parent_id, []).append(category_id)
    order, queue, seen = [], [root], set()
    while queue:
        current = queue.pop(0)
        if current in seen:
            continue
        seen.add(current)
        order.append(current)
        queue.extend(sorted(children.get(current, [])))
    return order


def plan_move(parents: dict[str, str | None], paths: dict[str, tuple[str, ...]], category_id: str,
              new_parent_id: str | None) -> list[Placed]:
    """Where `category_id` and its subtree land under `new_parent_id` (None: a root)."""
    if category_id not in parents:
        raise NotFound("No such category", code="category_not_found")
    if new_parent_id is not None and new_parent_id not in parents:
        raise BadRequest("No such parent category", code="category_not_found",
                         details=[{"field": "parent_id", "message": "no such category"}])
    moved = subtree(parents, category_id)
    if new_parent_id in moved:
        raise BadRequest("A category cannot move under itself or its descendants", code="category_cycle",
                         details=[{"field": "parent_id", "message": "is the category or one of its descendants"}])
    base = paths[new_parent_id] if new_parent_id else ()
    old_base = len(paths[category_id]) - 1
    placed = []
    for member in moved:
        path = (*base, *paths[member][old_base:])
        if len(path) > MAX_LEVEL:
            raise BadRequest(f"Categories have at most {MAX_LEVEL} levels", code="category_too_deep",
                             details=[{"field": "parent_id", "message": f"{member} would be at level {len(path)}"}])
        placed.append(Placed(member, new_parent_id if member == category_id else parents[member], len(path), path))
    return placed


def hidden_for_buyers(paths: dict[str, tuple[str, ...]], hidden: Iterable[str]) -> set[str]:
    """Categories buyers do not see: hidden ones and everything under them."""
    hidden = set(hidden)
    return {category_id for category_id, path in paths.items() if hidden & set(path)}
