"""The quality checks' widgets: findings on the Batch page's cards and detail dialog, the flag
filter and sort, re-scoring, and the flags' agreement with verdicts in Review & reports."""
