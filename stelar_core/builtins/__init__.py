"""stelar-core's default providers, registered through its own entry points like any plugin."""
