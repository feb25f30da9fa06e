"""Writing tables as `Store` methods, shared by every store implementation.

Both stores check the frames the same way (`geo.store.records.prepare_tables`) and write the
checked rows in their own transaction (``_replace``: the dialect's SQL), so `TableWritesMixin`
holds what `replace_all` and `replace_tables` say and the stores do not repeat it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from geo.store.records import PreparedTable


class TableWritesMixin:
    """`replace_all` and `replace_tables` of the `Store` protocol, over ``_replace``."""

    def _replace(
        self,
        prepared: Mapping[str, PreparedTable],
        *,
        author: str,
        reason: str,
        expected_version: int | None,
        audit: Mapping[str, Any] | None,
        path: str,
        record_history: bool = False,
    ) -> int:
        """Write the ``prepared`` tables as one new version (the store's transaction)."""
        raise NotImplementedError

    def replace_all(
        self,
        tables: Mapping[str, pd.DataFrame],
        *,
        author: str,
        reason: str,
        expected_version: int | None = None,
        record_history: bool = False,
        audit: Mapping[str, Any] | None = None,
    ) -> int:
        """Replace every table in one transaction; tables absent from `tables` are emptied.

        Raises `InvalidRecord` (nothing written) when a frame does not fit its spec, and
        `StaleVersionError` when `expected_version` is given and another version was committed.
        The community history is kept; ``record_history`` appends a "load" version (this
        author and reason) for every community written. An audit row (``audit``: the API's
        request context, see `geo.store.users.audit_row`) is appended in the same transaction.
        """
        from geo.store.records import prepare_tables  # (geopandas: not at the store's import)

        return self._replace(
            prepare_tables(tables, every=True), author=author, reason=reason,
            expected_version=expected_version, record_history=record_history, audit=audit,
            path="replace_all",
        )  # fmt: skip

    def replace_tables(
        self,
        tables: Mapping[str, pd.DataFrame],
        *,
        author: str,
        reason: str,
        expected_version: int | None = None,
        audit: Mapping[str, Any] | None = None,
    ) -> int:
        """Replace the tables named in ``tables`` in one transaction; the others, their stamps
        included, stay as they are (see `geo.store.base.Store.replace_tables`)."""
        from geo.store.records import prepare_tables

        return self._replace(
            prepare_tables(tables, every=False), author=author, reason=reason,
            expected_version=expected_version, audit=audit, path="replace_tables",
        )  # fmt: skip
