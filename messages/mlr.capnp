@0xc614ef60af43134a;
# mlr's replication protocol. This schema is the contract between nodes: fields are
# append-only (never renumbered, never reused), so any Cap'n Proto implementation that
# has this file can read and write what a node sends. (The layout was last reshaped before
# any release, to make per-event metadata small; from the first release on it only grows.)

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("mlr::wire");

# One incarnation of one node: the origin half of a dot. Batches intern sources in a
# table so that events refer to them by a small index.
struct Source {
  node @0 :UInt32;          # index of the node in the cluster's membership
  incarnation @1 :UInt64;   # random id the node took when it could not prove its past
}

# A (source, counter) pair: a dot, a version-vector entry or a dependency. `source`
# indexes the enclosing message's source table.
struct Counter {
  source @0 :UInt16;
  counter @1 :UInt64;
}

# A dot in one word: (source, counter) with a 48-bit counter split in two fields, so that
# deps and contexts cost one word each (a node takes a new incarnation long before its
# counter reaches 2^48). `source` indexes the enclosing batch's source table.
struct Dot {
  source @0 :UInt16;
  counterLow @1 :UInt32;     # counter & 0xffffffff
  counterHigh @2 :UInt16;    # counter >> 32
}

# One write, as it travels between leaders.
struct Event {
  source @0 :UInt16;         # origin incarnation (index into the batch's sources)
  counter @1 :UInt64;        # the dot is (source, counter)
  hlcDelta @2 :UInt64;       # hybrid logical clock minus the batch's baseHlc
  seenBy @3 :UInt64;         # nodes 0-63 that hold or are being sent this event (bit i = node i)
  deps @4 :List(Dot);        # causal deps as a delta against the origin's previous event
  context @5 :List(Dot);     # dots of the versions of `key` this write replaces
  key @6 :Data;
  union {
    put @7 :Data;            # the new value
    del @8 :Void;            # a delete (tombstone)
  }
  seenByMore @9 :List(UInt64); # nodes 64 and up: word i covers nodes 64(i+1) .. 64(i+1)+63
}

# What a replication link ships in one go.
struct EventBatch {
  sender @0 :UInt32;         # node index of the sending leader
  epoch @1 :UInt64;          # topology epoch the sender routed under (0: static topology)
  sources @2 :List(Source);
  events @3 :List(Event);
  baseHlc @4 :UInt64;        # HLCs are physical milliseconds << 16 | logical; events carry deltas
}

# The receiver's answer to a batch, sent on receipt (before causal delivery).
struct Ack {
  receiver @0 :UInt32;
  sources @1 :List(Source);
  versionVector @2 :List(Counter);  # what the receiver has applied
  received @3 :UInt32;              # events in the acknowledged batch
  duplicates @4 :UInt32;            # of which already applied or already buffered
}

# A closed range of counters of one source.
struct Range {
  source @0 :UInt16;
  first @1 :UInt64;
  last @2 :UInt64;
}

# Pull: "send me these events if you hold them". A node sends it to one holder (chosen
# from gossiped version vectors) when it has waited past a grace period for events it
# knows exist; the answer is an EventBatch in the holder's log order.
struct PullRequest {
  requester @0 :UInt32;
  sources @1 :List(Source);
  ranges @2 :List(Range);
}
