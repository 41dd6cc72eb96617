"""Who may act: staff users and their sessions, persons' portal log-in and
telephone PIN, self-service terminals and their activation, designated
institutions' request signatures, and the daily pruning of spent credentials."""
