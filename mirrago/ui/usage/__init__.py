"""Usage page widgets: figures, charts and tables."""
