"""Collect Slack's access logs (`team.accessLogs`) and deliver every login entry once: to
Coralogix's log ingestion, or as NDJSON.

Reading. Slack lists logins newest first (by `date_first`), at most 1,000 a page and 100 pages a
query; `before` (inclusive) bounds the newest. A run reads its whole window, from the floor
(see below) up to `--until` or Slack's now, walking the cursor; when 100 pages are not enough (or
Slack answers `over_pagination_limit`) it narrows the window by querying again with `before` =
the oldest `date_first` seen so far. Entries read twice are merged by their key.

Once. An entry's key is (user_id, ip, user_agent, date_first): Slack updates `date_last` and
`count` of an entry in place, which does not make it new. Each destination (Coralogix, stdout,
each output file) has a checkpoint: the high-water mark (the newest `date_first` delivered) and
the digests of the entries delivered within OVERLAP of it. The next run's floor is high-water -
OVERLAP, so entries Slack reports late are still found, and entries whose digest is known are
skipped. Digests, not keys, so the state dir holds no IP addresses or user agents.

Crash safety (kill -9 at any moment). New entries go out oldest first, in batches. Only after
the destination accepted a batch (Coralogix answered 2xx; NDJSON lines written, flushed and,
for a file, fsync'd) is one journal line with the batch's digests and newest `date_first`
appended with a single write() and fsync'd. The snapshot (`<name>.json`) is rewritten
atomically from snapshot + journal only at the start and end of a run, then the journal removed.
Each batch for Coralogix is sent, and its journal line written, by a child forked for that
batch, which then tells the collector how it went through a pipe. The child ignores SIGINT,
SIGTERM and SIGHUP and has no hold on the collector's stdout and stderr, so it outlives the
collector's death; and it inherited the lock (below), so a rerun starts only after it exited.
- Killed before a batch was sent, or after its journal line: the rerun replays the journal,
  skips what it records and sends the rest, each entry once.
- The collector killed while a batch for Coralogix is in flight: its child finishes the request
  and the journal line, and the rerun, waiting for the lock until then, skips that batch. Ctrl-C
  reaches both: the child ignores it, and the collector stops once the batch is recorded.
- Still a duplicate, of that one batch: power loss (or an OS crash), or the child killed too
  (kill -9 of the whole process group, or the end of a container whose PID 1 the collector is)
  while the request is in flight or before its journal line. Coralogix may have the batch (a
  server finishes a request its client died during), but the journal does not, so the rerun
  sends it again. Coralogix's ingestion has no idempotency key and a Send-Your-Data key cannot
  ask what arrived, so no client can rule it out; `--batch-size` bounds it. NDJSON is written
  by the collector itself: killed between an fsync'd write and its journal line, a window of
  one write(), it writes that batch again.
- Never a gap: batches go out oldest first, so everything not yet delivered is at least as new
  as the high-water mark, inside the next run's window.
- Killed while compacting: the snapshot rename is atomic and the journal is removed after it;
  replaying a journal over a snapshot that already holds it changes nothing.
Runs for the same integration and destination take turns on a lock file and read the
checkpoint only once they hold it, so two of them never deliver the same batch. (flock belongs
to the open file, which a forked child shares: the lock is free once both have closed it.)

Modules: `reading` walks team.accessLogs; `records` turns logins into what is delivered;
`sinks` are the destinations; `checkpoint` remembers what each destination holds and sends each
batch (from a child, for Coralogix); `collect` is a run and a --follow job; `health` is doctor's view.
"""
