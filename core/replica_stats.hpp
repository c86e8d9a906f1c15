#pragma once
// The replica's counters, declared once: this table makes the struct, CAF's `inspect` (for
// messages), the status document (`mlr status --json`), RESP `INFO` and anything else that
// lists them (for_each_stat). A new counter is one line here.

#include <cstdint>

// X(field, name in status and INFO, what it counts). All are totals since the node started,
// except `buffered`.
#define MLR_REPLICA_STATS(X)                                                                       \
  X(local_writes, "local_writes", "writes this node took from its clients")                        \
  X(events_sent, "events_sent", "events handed to outgoing links")                                 \
  X(events_received, "events_received", "events arriving in batches, duplicates included")         \
  X(duplicates, "duplicates_dropped", "arrivals already applied or already buffered")              \
  X(applied_remote, "applied_remote", "events of other nodes applied here")                        \
  X(buffered, "buffered", "events waiting in the causal buffer now")                               \
  X(buffered_peak, "buffered_peak", "the most events the causal buffer held at once")              \
  X(buffer_overflows, "buffer_overflows", "events refused because the causal buffer was full")     \
  X(conflicts, "conflicts", "concurrent versions met (each sent to the resolver)")                 \
  X(resolved, "resolved", "conflicts the resolver answered")                                       \
  X(unresolved, "unresolved", "resolver failed or timed out: siblings kept")                       \
  X(pulls_sent, "pulls_sent", "pull requests this node made")                                      \
  X(pull_failures, "pull_failures", "pulls that timed out or failed (next holder is tried)")       \
  X(pulled_events, "pulled_events", "events that arrived in pull answers")                         \
  X(pulls_served, "pulls_served", "pull requests this node answered")                              \
  X(pull_events_served, "pull_events_served", "events sent in pull answers")                       \
  X(incarnations_taken, "incarnations_taken", "new incarnations after a peer showed a lost dot")   \
  X(tombstones_collected, "tombstones_collected", "stable deletes forgotten")                      \
  X(log_compacted, "log_compacted", "stable log entries dropped")                                  \
  X(transfers_received, "transfers_received", "state transfers completed as receiver")             \
  X(transfer_keys_received, "transfer_keys_received", "keys merged from state-transfer chunks")    \
  X(transfers_served, "transfers_served", "state transfers this node sent to the end")             \
  X(transfer_chunks_served, "transfer_chunks_served", "state-transfer chunks sent")                \
  X(incarnations_retired, "incarnations_retired", "incarnations folded into the retired table")    \
  X(retired_late, "retired_late", "events of a retired incarnation after its final counter")       \
  X(relayed, "relayed", "events that arrived on behalf of another node (detour)")                  \
  X(skipped_covered, "skipped_covered", "log entries not shipped: the destination had them")       \
  X(pulls_refused, "pulls_refused", "pulls for a requester that is not a live member")             \
  X(pull_answers_refused, "pull_answers_refused", "pull answers from a non-member holder")         \
  X(reports_refused, "reports_refused", "gossiped vectors of nodes that are not live members")     \
  X(events_refused, "events_refused", "events naming a node that is not a member")                 \
  X(orphans_dropped, "orphans_dropped", "buffered events of a lost incarnation nobody holds")      \
  X(text_refused, "text_refused", "text operations no honest peer sends (applied as no-ops)")      \
  X(text_loaded, "text_loaded", "text documents rebuilt from their stored operations")             \
  X(text_tombstones_collected, "text_tombstones_collected",                                        \
    "deleted text runs whose deleters were forgotten once stable")                                 \
  X(text_snapshots, "text_snapshots", "text snapshot records written (the encoded document)")      \
  X(text_records_dropped, "text_records_dropped",                                                  \
    "stored text operations dropped once stable and in a snapshot record")                         \
  X(text_evicted, "text_evicted", "text documents evicted from memory (least recently used)")

namespace mlr::core {

/// Counters a user (and a test) can read; see MLR_REPLICA_STATS for what each counts.
struct replica_stats {
#define MLR_STAT_MEMBER(field, name, doc) uint64_t field = 0;
  MLR_REPLICA_STATS(MLR_STAT_MEMBER)
#undef MLR_STAT_MEMBER
};

/// Calls f(name, value, doc) for every counter, in the table's order.
template <class Stats, class F> void for_each_stat(Stats& s, F&& f) {
#define MLR_STAT_VISIT(field, name, doc) f(name, s.field, doc);
  MLR_REPLICA_STATS(MLR_STAT_VISIT)
#undef MLR_STAT_VISIT
}

} // namespace mlr::core
