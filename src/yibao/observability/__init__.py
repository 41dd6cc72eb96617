"""What operators see of a running yibao: Prometheus metrics (``metrics``),
structured JSON logs with a request id (``logs``, ``context``), and the
readiness check (``health``).

A layer of its own below the domain: the store, the services and the
channels count and log through it, and it imports nothing of theirs."""
