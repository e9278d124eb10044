"""The `estm` command: parses arguments, calls estm_core, renders results. No ML logic here."""
