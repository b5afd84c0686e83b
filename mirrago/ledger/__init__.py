"""The persistent record of every batch, job and credit reading (SQLAlchemy Core, any database).

`records` holds the types pages and widgets show (states and their sets, records), `schema` the
tables and their migrations, `store` the `Ledger` itself, with the runner's moves (`claims`),
reviews (`reviews`), Stage's decks (`decks`), the quality checks (`triage`), the change counter
(`changes`) and job durations (`durations`) as parts of it. Import from here:
`from mirrago.ledger import Ledger, JobState`.
"""

from mirrago.ledger.changes import BatchVersion
from mirrago.ledger.claims import HOST
from mirrago.ledger.decks import VISITOR_SOURCE, DeckError, DeckRecord, SlideRecord
from mirrago.ledger.durations import DurationHistory
from mirrago.ledger.records import (
    ACTIVE_STATES,
    FINAL_STATES,
    RETRYABLE_STATES,
    UNKNOWN_BACKEND,
    BatchRecord,
    CreditReading,
    JobEvent,
    JobInput,
    JobRecord,
    JobState,
    Judgement,
    LedgerError,
    LedgerUnavailableError,
    Origin,
    Recovery,
    ReviewRecord,
    utcnow,
)
from mirrago.ledger.reviews import UNCHECKED, ReviewConflict, Unchecked
from mirrago.ledger.schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    UTCDateTime,
    batches,
    comparisons,
    credit_readings,
    deck_slides,
    decks,
    job_durations,
    job_events,
    jobs,
    metadata,
    migrate_schema,
    runners,
    schema_version_table,
    triage_results,
)
from mirrago.ledger.store import OPEN_PATIENCE, Ledger
from mirrago.ledger.triage import TriageRecord

# The `reviews` table is `mirrago.ledger.schema.reviews`: here `reviews` names the module.
__all__ = [
    "ACTIVE_STATES",
    "FINAL_STATES",
    "HOST",
    "MIGRATIONS",
    "OPEN_PATIENCE",
    "RETRYABLE_STATES",
    "SCHEMA_VERSION",
    "UNCHECKED",
    "UNKNOWN_BACKEND",
    "VISITOR_SOURCE",
    "BatchRecord",
    "BatchVersion",
    "CreditReading",
    "DeckError",
    "DeckRecord",
    "DurationHistory",
    "JobEvent",
    "JobInput",
    "JobRecord",
    "JobState",
    "Judgement",
    "Ledger",
    "LedgerError",
    "LedgerUnavailableError",
    "Origin",
    "Recovery",
    "ReviewConflict",
    "ReviewRecord",
    "SlideRecord",
    "TriageRecord",
    "UTCDateTime",
    "Unchecked",
    "batches",
    "comparisons",
    "credit_readings",
    "deck_slides",
    "decks",
    "job_durations",
    "job_events",
    "jobs",
    "metadata",
    "migrate_schema",
    "runners",
    "schema_version_table",
    "triage_results",
    "utcnow",
]
