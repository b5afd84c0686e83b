"""Review widgets for a batch: panel, hooks, compare, matrix, export and workspace."""
