"""Review widgets for a batch: panel, gallery extras, compare, matrix, export and workspace."""
