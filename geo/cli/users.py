"""`geo users` (API users and tokens) and `geo audit` (the log of writes)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from geo.cli.common import DbOption, err, existing_store, out, settings_for
from geo.cli.root import app

users_app = typer.Typer(
    help="API users and their bearer tokens (roles: officer, planner, admin).",
    no_args_is_help=True,
)
app.add_typer(users_app, name="users")


@contextmanager
def _user_store(db: str | None) -> Iterator[Any]:
    """The existing store for a users command (closed afterwards)."""
    store = existing_store(settings_for(db).db)
    try:
        yield store
    finally:
        store.close()


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="user name (recorded as the author of edits)")],
    role: Annotated[str, typer.Option(help="officer | planner | admin")] = "officer",
    db: DbOption = None,
) -> None:
    """Create a user and print its bearer token ONCE (the store keeps only a salted hash)."""
    from geo.store.users import add_user

    with _user_store(db) as store:
        token = add_user(store, name, role)
    err.print(f"user {name} ({role}); its token, shown only now:", highlight=False)
    print(token)


@users_app.command("token")
def users_token(
    name: Annotated[str, typer.Argument(help="an active user")], db: DbOption = None
) -> None:
    """Issue another token for an active user and print it ONCE."""
    from geo.store.users import issue_token

    with _user_store(db) as store:
        token = issue_token(store, name)
    print(token)


@users_app.command("list")
def users_list(db: DbOption = None) -> None:
    """Users, roles, when created or revoked, and how many active tokens each has."""
    from geo.store.users import list_users

    with _user_store(db) as store:
        rows = list_users(store)
    for u in rows:
        state = f"revoked {u['revoked']}" if u["revoked"] else f"{u['active_tokens']} token(s)"
        print(f"{u['name']}\t{u['role']}\t{u['created']}\t{state}")


@users_app.command("revoke")
def users_revoke(
    name: Annotated[str, typer.Argument(help="the user to revoke")], db: DbOption = None
) -> None:
    """Revoke a user and every token of theirs at once."""
    from geo.store.users import revoke_user

    with _user_store(db) as store:
        revoke_user(store, name)
    out.print(f"revoked {name}", highlight=False)


@app.command("audit")
def audit_cmd(
    limit: Annotated[int, typer.Option(min=1, help="show this many rows, newest first")] = 50,
    db: DbOption = None,
) -> None:
    """The append-only audit log of writes: time, who, what, store version before → after."""
    from geo.store.users import audit_rows

    with _user_store(db) as store:
        total, rows = audit_rows(store, limit)
    for r in rows:
        target = f" {r['target']}" if r["target"] else ""
        print(
            f"{r['seq']}\t{r['time']}\t{r['actor']} ({r['role'] or '-'})\t{r['method']} "
            f"{r['path']}{target}\tv{r['version_before']}→v{r['version_after']}\t"
            f"{r['request_id'] or '-'}"
        )
    err.print(f"{len(rows)} of {total} audit rows", highlight=False)
