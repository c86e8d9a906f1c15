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
    put @7 :Data;            # register: the new value
    del @8 :Void;            # register: a delete (tombstone)
    incr @12 :UInt64;        # counter: the origin's new running total (modulo 2^64)
    sadd @13 :Void;          # set: adds `field`, tagged by this event's dot
    srem @14 :Void;          # set: removes the tags of `field` that the context names
    hset @15 :Data;          # map: field `field` becomes this value
    hdel @16 :Void;          # map: removes field `field`
    hincr @17 :UInt64;       # map: field `field` is a counter; the origin's new running total
    clear @18 :Void;         # a typed key's delete: removes what the context and `removed` name
    textInsert @19 :TextInsert;        # text: inserts characters (core/text.hpp)
    textDelete @20 :List(TextRange);   # text: removes the characters named
  }
  seenByMore @9 :List(UInt64); # nodes 64 and up: word i covers nodes 64(i+1) .. 64(i+1)+63
  field @10 :Data;           # typed operations: the set element or map field
  removed @11 :List(CounterRemoval); # counter shares this write removes
  overText @21 :Bool;        # a write of another type over a text key: the characters that the
                             # operations its context names inserted go (core/replica_text)
}

# Of one origin incarnation's share of a counter (or of a map field that is a counter), the
# running total up to `upto` no longer counts: increments concurrent with the removal survive.
struct CounterRemoval {
  field @0 :Data;            # the map field ("" for a counter key)
  source @1 :UInt16;         # the share's origin incarnation (index into the batch's sources)
  upto @2 :UInt64;           # the counter of the origin's increment the removal saw last
  total @3 :UInt64;          # the origin's running total then
  inMap @4 :Bool;            # a share of a map field (else of a counter key)
}

# A text character: its origin incarnation (index into the batch's sources) and its seq in
# that origin's characters of the document.
struct TextRef {
  source @0 :UInt16;
  seq @1 :UInt64;
}

# Characters (source, seq) .. (source, seq + len - 1).
struct TextRange {
  source @0 :UInt16;
  seq @1 :UInt64;
  len @2 :UInt64;
}

# Characters typed at one place: they take seqs firstSeq, firstSeq + 1, ... and go after
# `left` (the character before them where their author typed; absent: at the start) and
# before `right` (the element after it then, deleted or not; absent: at the end).
struct TextInsert {
  text @0 :Data;             # UTF-8 (checked where it is applied)
  firstSeq @1 :UInt64;
  left @2 :TextRef;
  right @3 :TextRef;
}

# What a replication link ships in one go.
struct EventBatch {
  sender @0 :UInt32;         # node index of the sending leader
  epoch @1 :UInt64;          # topology epoch the sender routed under (0: static topology)
  sources @2 :List(Source);
  events @3 :List(Event);
  baseHlc @4 :UInt64;        # HLCs are physical milliseconds << 16 | logical; events carry deltas
  compacted @5 :Bool;        # pull answer: what was asked left the sender's log; ask for a state transfer
  chunk @6 :StateChunk;      # pull answer to a state-transfer request (sources index `sources`)
  relayFor @7 :UInt32;       # 0, or 1 + the node this batch was meant for: it stopped answering,
                             # so the receiver forwards these events as that node would have
}

# One version of a key in a state transfer. `source` indexes the enclosing batch's sources.
struct KeyVersion {
  source @0 :UInt16;
  counter @1 :UInt64;
  hlc @2 :UInt64;
  tombstone @3 :Bool;
  value @4 :Data;
  kind @5 :UInt8;            # 0 register, 1 counter share, 2 set element, 3 map field, 4 map counter share
  field @6 :Data;            # the set element or map field
}

struct KeyState {
  key @0 :Data;
  versions @1 :List(KeyVersion);
}

# A chunk of a state transfer: keys of a consistent snapshot of the sender's key state, in
# ascending key order. The receiver merges them as a state CRDT: a version survives if both
# sides hold it, or if one side holds it and the other side's vector does not cover it.
struct StateChunk {
  transfer @0 :UInt64;            # id the sender gave this transfer
  snapshot @1 :List(Counter);     # the snapshot's version vector
  retired @2 :List(Counter);      # the sender's retired incarnations -> final counters
  keys @3 :List(KeyState);
  done @4 :Bool;                  # last chunk
  keysTotal @5 :UInt64;           # keys in the snapshot (an estimate on RocksDB)
  keysSent @6 :UInt64;            # keys sent so far, this chunk included
}

# The receiver's answer to a batch, sent on receipt (before causal delivery).
struct Ack {
  receiver @0 :UInt32;
  sources @1 :List(Source);
  versionVector @2 :List(Counter);  # what the receiver has applied
  received @3 :UInt32;              # events in the acknowledged batch
  duplicates @4 :UInt32;            # of which already applied or already buffered
  stable @5 :List(Counter);         # gossip: what is stable at the receiver (a tombstone is
                                    # collected only once it is stable everywhere)
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
  startTransfer @3 :Bool;    # ask for a state transfer (after an answer marked `compacted`)
  transfer @4 :UInt64;       # non-zero: the next chunk of this transfer...
  afterKey @5 :Data;         # ...with the keys after this one
}

# --- Between processes ---------------------------------------------------------------
# On a TCP connection every message is two standard Cap'n Proto stream frames, back to
# back: a Header, then the payload its `kind` names (an EventBatch for `batch`, ...). The
# payload is the very frame leaders exchange in process, so nothing is copied to wrap it.

enum Kind {
  hello @0;          # payload: Hello (dialer -> acceptor)
  helloReply @1;     # payload: HelloReply (acceptor -> dialer)
  proof @2;          # payload: Proof (dialer -> acceptor); the connection is then up
  batch @3;          # payload: EventBatch; answered by `ack` with the same requestId
  ack @4;            # payload: Ack
  pull @5;           # payload: PullRequest; answered by `pullAnswer`
  pullAnswer @6;     # payload: EventBatch
  gossip @7;         # payload: Ack (the sender's version vector)
  heartbeat @8;      # payload: Ack (the sender's version vector; also keeps the peer "up")
  error @9;          # payload: Failure; answers a request that failed
  clientRequest @10; # payload: ClientRequest (client port)
  clientResponse @11;# payload: ClientResponse (client port)
  welcome @12;       # payload: Welcome (acceptor -> dialer, once the dialer's proof checked out)
}

struct Header {
  kind @0 :Kind;
  requestId @1 :UInt64;   # pairs an answer with its request; 0 for one-way messages
}

# The handshake (protocol version 2). Nothing about a node is told to a connection before
# the connection has proved that it knows the cluster secret, and both proofs bind the
# whole transcript (the exact bytes of the hello and of the challenge):
#   dialer -> acceptor   Hello       nodeId, minVersion, maxVersion, nonce (nothing else)
#   acceptor -> dialer   HelloReply  version, nonce (nothing else: the challenge)
#   dialer -> acceptor   Proof       HMAC-SHA256(secret, "mlr-dialer-2" | cluster | transcript)
#   acceptor -> dialer   Welcome     its id, incarnation and vector, and
#                                    HMAC-SHA256(secret, "mlr-acceptor-2" | cluster | transcript | dialer proof)
# where transcript = u64le(len(hello)) | hello | u64le(len(reply)) | reply. The cluster name
# is never sent: it is bound into both proofs. Version 1's fields that carried node state
# in the hello and its reply stay in the schema, unused.
struct Hello {
  cluster @0 :Text;
  nodeId @1 :Text;
  incarnation @2 :UInt64;
  minVersion @3 :UInt32;  # protocol versions the sender speaks, inclusive
  maxVersion @4 :UInt32;
  sources @5 :List(Source);
  versionVector @6 :List(Counter);
  nonce @7 :Data;         # 32 random bytes the other side must sign
}

struct HelloReply {
  cluster @0 :Text;
  nodeId @1 :Text;
  incarnation @2 :UInt64;
  version @3 :UInt32;     # the highest version both speak
  sources @4 :List(Source);
  versionVector @5 :List(Counter);
  nonce @6 :Data;         # the acceptor's own challenge
  proof @7 :Data;         # unused since version 2
}

struct Proof {
  proof @0 :Data;         # see the handshake above
}

struct Welcome {
  nodeId @0 :Text;
  incarnation @1 :UInt64;
  sources @2 :List(Source);
  versionVector @3 :List(Counter);
  proof @4 :Data;         # see the handshake above
}

struct Failure {
  code @0 :UInt8;         # mlr's error code (messages/error.hpp)
  message @1 :Text;
}

# A version as the conflict feed gives it to clients: self-contained (no source table).
struct RecordedVersion {
  node @0 :UInt32;           # the dot: origin node index, incarnation, counter
  incarnation @1 :UInt64;
  counter @2 :UInt64;
  hlc @3 :UInt64;
  tombstone @4 :Bool;
  value @5 :Data;
  kind @6 :UInt8;            # as KeyVersion's
  field @7 :Data;
}

# One entry of a node's conflict feed: a key's concurrent versions as its resolver was given
# them, and the outcome.
struct ConflictRecord {
  seq @0 :UInt64;            # from 1, never reused; the oldest are trimmed
  atMs @1 :UInt64;           # wall clock, ms since the epoch
  key @2 :Data;
  resolver @3 :Text;         # lww, multi, max, tags, or "custom"
  versions @4 :List(RecordedVersion);
  kept @5 :List(RecordedVersion);  # only the dots are set: what was kept
  outcome @6 :UInt8;         # 0 unresolved (see reason), 1 selected, 2 merged (see value)
  valuesCut @7 :Bool;        # the input values were too large to keep whole (1 KiB each kept)
  reason @8 :Text;
  value @9 :Data;
}

struct ClientRequest {
  union {
    put :group {
      key @0 :Data;
      value @1 :Data;
      hasContext @2 :Bool;
      context @3 :Text;   # the token a get returned
    }
    get :group {
      key @4 :Data;
    }
    del :group {
      key @5 :Data;
      hasContext @6 :Bool;
      context @7 :Text;
    }
    status @8 :Void;
    setTopology @9 :Text;  # "ring", "star:HUB", "mesh" or an edge list; answered by `written`
                           # (needs the admin secret)
    auth @10 :Data;        # the client secret (data) or the admin secret (data and admin);
                           # answered by `written` ("client" or "admin") or a failure
    typed :group {         # a counter, set, map or text operation; answered by `number`
      op @11 :UInt8;       # 2 incr, 3 sadd, 4 srem, 5 hset, 6 hdel, 7 hincr, 9 text insert,
                           # 10 text delete (Event's numbering)
      key @12 :Data;
      field @13 :Data;     # the set member or map field
      value @14 :Data;     # hset: the field's value; text insert: the text (UTF-8)
      delta @15 :Int64;    # incr, hincr: what to add
      index @21 :UInt64;   # text: where (code points; past the end: the end)
      count @22 :UInt64;   # text delete: how many code points
      hasContext @23 :Bool;
      context @24 :Text;   # text: a read's context; the index counts in the document as read
    }
    read @16 :Data;        # a key's value by its type; answered by `typed`
    watch @17 :Data;       # a key prefix: answered by `written` ("watching"), then by one
                           # `change` per change under it this node applies, local or remote,
                           # in apply order, with the same request id, until the connection
                           # closes (or a `failure` when the subscriber fell too far behind)
    conflicts :group {     # the conflict feed; answered by `conflicts`
      after @18 :UInt64;   # records with a greater sequence number
      limit @19 :UInt32;   # at most this many (the node sends at most 1,000, about 4 MiB)
    }
    setResolver @20 :Text; # lww, multi, max or tags, from now on (hot swap; needs the admin
                           # secret); answered by `written` with the questions in flight
  }
}

# What a change did to a text document, by index (code points), in order: each counts the
# edits before it.
struct TextEdit {
  insert @0 :Bool;
  index @1 :UInt64;
  text @2 :Data;             # insert: UTF-8
  count @3 :UInt64;          # delete
}

struct ClientResponse {
  union {
    written @0 :Text;      # the new write's dot
    value :group {
      siblings @1 :List(Data);
      context @2 :Text;    # hand back to put/del to replace exactly these versions
    }
    status @3 :Text;       # JSON
    failure @4 :Failure;
    number @5 :Int64;      # a typed write's answer: incr/hincr the new value; sadd, srem,
                           # hset, hdel 1 when they added or removed the member or field, else 0
    typed :group {         # the answer to `read`
      type @6 :Text;       # none, string, counter, set, hash or text
      items @7 :List(Data);# string: its value; counter: its decimal value; set: the members;
                           # hash: field, value, field, value, ...; text: the document
      context @15 :Text;   # text: the document's version (for text writes)
    }
    change :group {        # one change a `watch` asked for
      key @8 :Data;
      event @9 :Text;      # set, del, incrby, sadd, srem, hset, hdel, hincrby, merged, resolved
                           # (a selection dropped versions), transfer (a state transfer)
      type @10 :Text;      # the key's type after it
      field @11 :Data;     # the set member or map field
      value @12 :Data;     # set, merged, hset: the value; incrby, hincrby: the new value
      dot @13 :Text;       # the write's dot (its origin first)
      edits @16 :List(TextEdit); # text.insert, text.del (and a write over text): by index
    }
    conflicts @14 :List(ConflictRecord);  # oldest first; empty: none after `after`
  }
}
