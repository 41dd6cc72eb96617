"""The individual accounts' double-entry ledger: the only way a balance changes."""
