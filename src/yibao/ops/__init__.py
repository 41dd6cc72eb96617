"""Running yibao for a city: backups and restore drills, high availability."""
