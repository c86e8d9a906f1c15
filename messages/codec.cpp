#include "messages/codec.hpp"

#include "messages/detail/capnp_io.hpp"
#include "messages/detail/codec_ops.hpp"
#include "messages/mlr.capnp.h"

#include <capnp/message.h>
#include <capnp/serialize-packed.h>
#include <capnp/serialize.h>
#include <kj/exception.h>
#include <kj/io.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <stdexcept>

namespace mlr::messages {

using detail::as_bytes;
using detail::as_string;
using detail::malformed;
using detail::max_counter;
using detail::to_frame;
using detail::with_reader;

namespace {

// Interns sources into the per-message table that Counter and Event refer to by index.
class source_table {
public:
  /// Batches are split so that none needs more than 65,536 sources (see
  /// max_batch_sources); a vector or a batch that would is a bug, not a wrap-around.
  uint16_t index_of(const source& s) {
    if (order_.size() > UINT16_MAX && !index_.count(s))
      throw std::length_error("mlr: a message would name more than 65,536 sources");
    auto [it, inserted] = index_.emplace(s, static_cast<uint16_t>(order_.size()));
    if (inserted)
      order_.push_back(s);
    return it->second;
  }
  const std::vector<source>& sources() const { return order_; }

private:
  std::map<source, uint16_t> index_;
  std::vector<source> order_;
};

void write_sources(capnp::List<wire::Source>::Builder out, const std::vector<source>& xs) {
  for (unsigned i = 0; i < xs.size(); ++i) {
    out[i].setNode(xs[i].node);
    out[i].setIncarnation(xs[i].incarnation);
  }
}

void write_dots(capnp::List<wire::Dot>::Builder out, const std::vector<dot>& xs,
                source_table& table) {
  for (unsigned i = 0; i < xs.size(); ++i) {
    out[i].setSource(table.index_of(xs[i].origin));
    out[i].setCounterLow(static_cast<uint32_t>(xs[i].counter));
    out[i].setCounterHigh(static_cast<uint16_t>(xs[i].counter >> 32));
  }
}

result<std::vector<source>> read_sources(capnp::List<wire::Source>::Reader in) {
  if (in.size() > max_batch_sources)
    return malformed("message names " + std::to_string(in.size()) + " sources; at most " +
                     std::to_string(max_batch_sources) + " fit its 16-bit indexes");
  std::vector<source> out;
  out.reserve(in.size());
  for (auto s : in)
    out.push_back(source{s.getNode(), s.getIncarnation()});
  return out;
}

result<std::vector<dot>> read_counters(capnp::List<wire::Counter>::Reader in,
                                       const std::vector<source>& table, const char* field) {
  std::vector<dot> out;
  out.reserve(in.size());
  for (auto c : in) {
    if (c.getSource() >= table.size())
      return malformed(std::string(field) + " refers to source " + std::to_string(c.getSource()) +
                       " but the table has " + std::to_string(table.size()));
    if (c.getCounter() > max_counter)
      return malformed(std::string(field) + " has counter " + std::to_string(c.getCounter()) +
                       "; counters stay below 2^48");
    out.push_back(dot{table[c.getSource()], c.getCounter()});
  }
  return out;
}

result<std::vector<dot>> read_dots(capnp::List<wire::Dot>::Reader in,
                                   const std::vector<source>& table, const char* field) {
  std::vector<dot> out;
  out.reserve(in.size());
  for (auto d : in) {
    if (d.getSource() >= table.size())
      return malformed(std::string(field) + " refers to source " + std::to_string(d.getSource()) +
                       " but the table has " + std::to_string(table.size()));
    auto counter = (uint64_t{d.getCounterHigh()} << 32) | d.getCounterLow();
    if (counter == 0)
      return malformed(std::string(field) + " names counter 0; counters start at 1");
    out.push_back(dot{table[d.getSource()], counter});
  }
  return out;
}

void write_vector(capnp::List<wire::Counter>::Builder out, const version_vector& vv,
                  source_table& table) {
  auto& entries = vv.entries();
  for (unsigned i = 0; i < entries.size(); ++i) {
    out[i].setSource(table.index_of(entries[i].first));
    out[i].setCounter(entries[i].second);
  }
}

void write_chunk(wire::StateChunk::Builder out, const state_chunk& c, source_table& table) {
  out.setTransfer(c.transfer);
  out.setDone(c.done);
  out.setKeysTotal(c.keys_total);
  out.setKeysSent(c.keys_sent);
  write_vector(out.initSnapshot(static_cast<unsigned>(c.snapshot.size())), c.snapshot, table);
  write_vector(out.initRetired(static_cast<unsigned>(c.retired.size())), c.retired, table);
  auto keys = out.initKeys(static_cast<unsigned>(c.keys.size()));
  for (unsigned i = 0; i < c.keys.size(); ++i) {
    keys[i].setKey(as_bytes(c.keys[i].first));
    auto& vs = c.keys[i].second;
    auto versions = keys[i].initVersions(static_cast<unsigned>(vs.size()));
    for (unsigned j = 0; j < vs.size(); ++j) {
      versions[j].setSource(table.index_of(vs[j].id.origin));
      versions[j].setCounter(vs[j].id.counter);
      versions[j].setHlc(vs[j].time.value);
      versions[j].setTombstone(vs[j].tombstone);
      if (!vs[j].tombstone)
        versions[j].setValue(as_bytes(vs[j].value));
      versions[j].setKind(static_cast<uint8_t>(vs[j].kind));
      if (!vs[j].field.empty())
        versions[j].setField(as_bytes(vs[j].field));
    }
  }
}

result<version_vector> read_vector(capnp::List<wire::Counter>::Reader in,
                                   const std::vector<source>& table, const char* field) {
  auto entries = read_counters(in, table, field);
  if (!entries)
    return entries.err();
  return version_vector::from_dots(std::move(*entries));
}

result<state_chunk> read_chunk(wire::StateChunk::Reader in, const std::vector<source>& table) {
  state_chunk out;
  out.transfer = in.getTransfer();
  out.done = in.getDone();
  out.keys_total = in.getKeysTotal();
  out.keys_sent = in.getKeysSent();
  auto snapshot = read_vector(in.getSnapshot(), table, "snapshot vector");
  if (!snapshot)
    return snapshot.err();
  out.snapshot = std::move(*snapshot);
  auto retired = read_vector(in.getRetired(), table, "retired table");
  if (!retired)
    return retired.err();
  out.retired = std::move(*retired);
  out.keys.reserve(in.getKeys().size());
  for (auto k : in.getKeys()) {
    std::vector<version> vs;
    for (auto v : k.getVersions()) {
      if (v.getSource() >= table.size())
        return malformed("state chunk version refers to source " + std::to_string(v.getSource()) +
                         " but the table has " + std::to_string(table.size()));
      if (v.getCounter() == 0 || v.getCounter() > max_counter)
        return malformed("state chunk version has counter " + std::to_string(v.getCounter()));
      if (v.getKind() > max_value_kind)
        return malformed("state chunk version has kind " + std::to_string(v.getKind()) +
                         "; kinds run from 0 to " + std::to_string(max_value_kind));
      vs.push_back(version{dot{table[v.getSource()], v.getCounter()}, hlc{v.getHlc()},
                           v.getTombstone(), as_string(v.getValue()),
                           static_cast<value_kind>(v.getKind()), as_string(v.getField())});
    }
    out.keys.emplace_back(as_string(k.getKey()), std::move(vs));
  }
  return out;
}

void build_batch(capnp::MessageBuilder& msg, const event_batch& batch) {
  auto root = msg.initRoot<wire::EventBatch>();
  root.setSender(batch.sender);
  root.setEpoch(batch.epoch);
  uint64_t base = 0;
  if (!batch.events.empty()) {
    base = batch.events.front().time.value;
    for (auto& e : batch.events)
      base = std::min(base, e.time.value);
  }
  root.setBaseHlc(base);
  source_table table;
  auto events = root.initEvents(static_cast<unsigned>(batch.events.size()));
  for (unsigned i = 0; i < batch.events.size(); ++i) {
    auto& e = batch.events[i];
    auto out = events[i];
    out.setSource(table.index_of(e.id.origin));
    out.setCounter(e.id.counter);
    out.setHlcDelta(e.time.value - base);
    auto& words = e.seen.words();
    if (!words.empty())
      out.setSeenBy(words[0]);
    if (words.size() > 1) {
      auto more = out.initSeenByMore(static_cast<unsigned>(words.size() - 1));
      for (unsigned w = 1; w < words.size(); ++w)
        more.set(w - 1, words[w]);
    }
    write_dots(out.initDeps(static_cast<unsigned>(e.deps.size())), e.deps, table);
    auto context = canonical_context(e.context); // entries logged before it was the rule
    write_dots(out.initContext(static_cast<unsigned>(context.size())), context, table);
    out.setKey(as_bytes(e.key));
    detail::write_op(out, e, [&](const source& s) { return table.index_of(s); });
  }
  root.setCompacted(batch.compacted);
  if (batch.relay_for != no_node)
    root.setRelayFor(batch.relay_for + 1);
  if (batch.chunk)
    write_chunk(root.initChunk(), *batch.chunk, table);
  write_sources(root.initSources(static_cast<unsigned>(table.sources().size())), table.sources());
}

} // namespace

frame encode(const event_batch& batch) {
  capnp::MallocMessageBuilder msg;
  build_batch(msg, batch);
  return to_frame(msg);
}

std::vector<uint8_t> encode_packed(const event_batch& batch) {
  capnp::MallocMessageBuilder msg;
  build_batch(msg, batch);
  kj::VectorOutputStream out;
  capnp::writePackedMessage(out, msg);
  auto bytes = out.getArray();
  return std::vector<uint8_t>(bytes.begin(), bytes.end());
}

frame encode(const ack& a) {
  capnp::MallocMessageBuilder msg;
  auto root = msg.initRoot<wire::Ack>();
  root.setReceiver(a.receiver);
  root.setReceived(a.received);
  root.setDuplicates(a.duplicates);
  source_table table;
  auto& entries = a.applied.entries();
  auto vv = root.initVersionVector(static_cast<unsigned>(entries.size()));
  for (unsigned i = 0; i < entries.size(); ++i) {
    vv[i].setSource(table.index_of(entries[i].first));
    vv[i].setCounter(entries[i].second);
  }
  if (a.has_stable || !a.stable.empty())
    write_vector(root.initStable(static_cast<unsigned>(a.stable.size())), a.stable, table);
  write_sources(root.initSources(static_cast<unsigned>(table.sources().size())), table.sources());
  return to_frame(msg);
}

frame encode(const pull_request& p) {
  capnp::MallocMessageBuilder msg;
  auto root = msg.initRoot<wire::PullRequest>();
  root.setRequester(p.requester);
  root.setStartTransfer(p.start_transfer);
  root.setTransfer(p.transfer);
  if (!p.after_key.empty())
    root.setAfterKey(as_bytes(p.after_key));
  source_table table;
  auto ranges = root.initRanges(static_cast<unsigned>(p.ranges.size()));
  for (unsigned i = 0; i < p.ranges.size(); ++i) {
    ranges[i].setSource(table.index_of(p.ranges[i].origin));
    ranges[i].setFirst(p.ranges[i].first);
    ranges[i].setLast(p.ranges[i].last);
  }
  write_sources(root.initSources(static_cast<unsigned>(table.sources().size())), table.sources());
  return to_frame(msg);
}

result<pull_request> decode_pull(const frame& f, const decode_limits& limits) {
  return with_reader<pull_request>(
    f, limits, "pull request", [&](capnp::MessageReader& reader) -> result<pull_request> {
      auto root = reader.getRoot<wire::PullRequest>();
      auto table = read_sources(root.getSources());
      if (!table)
        return table.err();
      pull_request out;
      out.requester = root.getRequester();
      out.start_transfer = root.getStartTransfer();
      out.transfer = root.getTransfer();
      out.after_key = as_string(root.getAfterKey());
      for (auto r : root.getRanges()) {
        if (r.getSource() >= table->size())
          return malformed("pull range refers to source " + std::to_string(r.getSource()) +
                           " but the table has " + std::to_string(table->size()));
        if (r.getFirst() == 0 || r.getFirst() > r.getLast() || r.getLast() > max_counter)
          return malformed("pull range " + std::to_string(r.getFirst()) + ".." +
                           std::to_string(r.getLast()) +
                           " is empty, starts at 0 or ends past 2^48");
        out.ranges.push_back(counter_range{(*table)[r.getSource()], r.getFirst(), r.getLast()});
      }
      return out;
    });
}

result<event_batch> decode_batch(const frame& f, const decode_limits& limits) {
  return with_reader<event_batch>(
    f, limits, "event batch", [&](capnp::MessageReader& reader) -> result<event_batch> {
      auto root = reader.getRoot<wire::EventBatch>();
      auto table = read_sources(root.getSources());
      if (!table)
        return table.err();
      auto events = root.getEvents();
      if (events.size() > limits.max_events)
        return error{errc::oversized_frame, "event batch carries " + std::to_string(events.size()) +
                                              " events, more than the limit of " +
                                              std::to_string(limits.max_events)};
      event_batch out;
      out.sender = root.getSender();
      out.epoch = root.getEpoch();
      out.events.reserve(events.size());
      for (auto in : events) {
        event e;
        if (in.getSource() >= table->size())
          return malformed("event refers to source " + std::to_string(in.getSource()) +
                           " but the table has " + std::to_string(table->size()));
        if (in.getCounter() == 0 || in.getCounter() > max_counter)
          return malformed("event has counter " + std::to_string(in.getCounter()) +
                           "; counters run from 1 to 2^48 - 1");
        e.id = dot{(*table)[in.getSource()], in.getCounter()};
        e.time = hlc{root.getBaseHlc() + in.getHlcDelta()};
        auto deps = read_dots(in.getDeps(), *table, "deps");
        if (!deps)
          return deps.err();
        e.deps = std::move(*deps);
        auto context = read_dots(in.getContext(), *table, "context");
        if (!context)
          return context.err();
        if (context->size() > 1) {
          std::vector<source> origins;
          origins.reserve(context->size());
          for (auto& d : *context)
            origins.push_back(d.origin);
          std::sort(origins.begin(), origins.end());
          auto twice = std::adjacent_find(origins.begin(), origins.end());
          if (twice != origins.end())
            return malformed("event " + std::to_string(in.getCounter()) +
                             "'s context names origin incarnation " + to_string(*twice) +
                             " twice; a context carries one dot per origin incarnation");
        }
        e.context = std::move(*context);
        auto more = in.getSeenByMore();
        if (in.getSeenBy() != 0 || more.size() > 0) {
          e.seen.words().reserve(more.size() + 1);
          e.seen.words().push_back(in.getSeenBy());
          for (auto w : more)
            e.seen.words().push_back(w);
        }
        e.key = as_string(in.getKey());
        if (auto err = detail::read_op(in, *table, e))
          return *err;
        out.events.push_back(std::move(e));
      }
      out.compacted = root.getCompacted();
      if (root.getRelayFor() != 0)
        out.relay_for = root.getRelayFor() - 1;
      if (root.hasChunk()) {
        auto chunk = read_chunk(root.getChunk(), *table);
        if (!chunk)
          return chunk.err();
        out.chunk = std::move(*chunk);
      }
      return out;
    });
}

result<ack> decode_ack(const frame& f, const decode_limits& limits) {
  return with_reader<ack>(f, limits, "ack", [&](capnp::MessageReader& reader) -> result<ack> {
    auto root = reader.getRoot<wire::Ack>();
    auto table = read_sources(root.getSources());
    if (!table)
      return table.err();
    auto entries = read_counters(root.getVersionVector(), *table, "version vector");
    if (!entries)
      return entries.err();
    ack out;
    out.receiver = root.getReceiver();
    out.received = root.getReceived();
    out.duplicates = root.getDuplicates();
    out.applied = version_vector::from_dots(std::move(*entries));
    auto stable = read_vector(root.getStable(), *table, "stable vector");
    if (!stable)
      return stable.err();
    out.stable = std::move(*stable);
    out.has_stable = root.hasStable();
    return out;
  });
}

result<node_index> peek_batch_sender(const frame& f, const decode_limits& limits) {
  return with_reader<node_index>(f, limits, "event batch",
                                 [](capnp::MessageReader& r) -> result<node_index> {
                                   return r.getRoot<wire::EventBatch>().getSender();
                                 });
}

result<node_index> peek_pull_requester(const frame& f, const decode_limits& limits) {
  return with_reader<node_index>(f, limits, "pull request",
                                 [](capnp::MessageReader& r) -> result<node_index> {
                                   return r.getRoot<wire::PullRequest>().getRequester();
                                 });
}

result<node_index> peek_ack_receiver(const frame& f, const decode_limits& limits) {
  return with_reader<node_index>(f, limits, "ack",
                                 [](capnp::MessageReader& r) -> result<node_index> {
                                   return r.getRoot<wire::Ack>().getReceiver();
                                 });
}

} // namespace mlr::messages
