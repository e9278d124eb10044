"""Model families, one module each; each registers its classes with `estm_core.store.register`."""
