#pragma once
// The messages leaders, links and clients exchange inside a process: the atoms, the value
// types that answer requests, their CAF `inspect` overloads, and mlr's error enum as a CAF
// error category ("mlr"). Light on purpose: it pulls in only CAF's atom, error and
// message headers, so that headers of other roles can include it cheaply.

#include "core/replica.hpp"
#include "core/typed.hpp"
#include "messages/error.hpp"
#include "messages/frame.hpp"
#include "messages/inspect.hpp"

#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/make_message.hpp>
#include <caf/sec.hpp>

#include <string>
#include <vector>

namespace mlr::actors {

// The core's names the actor shell speaks in. They live in mlr::core (core/); the shell
// names each one it uses here, so that it is clear where they come from.
using core::batch_budget;
using core::causal_buffer;
using core::change;
using core::conflict;
using core::conflict_record;
using core::for_each_stat;
using core::ready;
using core::replica;
using core::replica_config;
using core::replica_observer;
using core::replica_stats;
using core::reserved_key_prefix;
using core::routing;
using core::topology_key;
using core::transfer_progress;
using core::write_request;

} // namespace mlr::actors

CAF_ERROR_CODE_ENUM(mlr::errc, "mlr")

namespace mlr::actors {

using batch_atom = caf::atom_constant<caf::atom("batch")>;
using put_atom = caf::atom_constant<caf::atom("put")>;
using del_atom = caf::atom_constant<caf::atom("del")>;
using write_atom = caf::atom_constant<caf::atom("write")>;
using typed_atom = caf::atom_constant<caf::atom("typed")>;
using get_atom = caf::atom_constant<caf::atom("get")>;
using subscribe_atom = caf::atom_constant<caf::atom("subscribe")>;
using log_grew_atom = caf::atom_constant<caf::atom("log_grew")>;
using shipment_atom = caf::atom_constant<caf::atom("shipment")>;
using want_atom = caf::atom_constant<caf::atom("want")>;
using status_atom = caf::atom_constant<caf::atom("status")>;
using conflicts_atom = caf::atom_constant<caf::atom("conflicts")>;
using pull_atom = caf::atom_constant<caf::atom("pull")>;
using gossip_atom = caf::atom_constant<caf::atom("gossip")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using peers_atom = caf::atom_constant<caf::atom("peers")>;
using report_atom = caf::atom_constant<caf::atom("report")>;
using sync_atom = caf::atom_constant<caf::atom("sync")>;
using shutdown_atom = caf::atom_constant<caf::atom("shutdown")>;
using cursor_atom = caf::atom_constant<caf::atom("cursor")>;
using topology_atom = caf::atom_constant<caf::atom("topology")>;
using resolver_atom = caf::atom_constant<caf::atom("resolver")>;
using watch_atom = caf::atom_constant<caf::atom("watch")>;
using unwatch_atom = caf::atom_constant<caf::atom("unwatch")>;
using watch_ack_atom = caf::atom_constant<caf::atom("watch_ack")>;
using change_atom = caf::atom_constant<caf::atom("change")>;
using detour_atom = caf::atom_constant<caf::atom("detour")>;

/// The dots of the versions a client has seen: hand back what `get` returned, and the write
/// replaces exactly those (Riak's vclock, CouchDB's _rev).
struct causal_context {
  std::vector<messages::dot> dots;
};

/// What `get` returns: the live values (one, or several siblings) and their context.
struct get_result {
  std::vector<messages::version> siblings; ///< live values, deletes left out
  causal_context context;                  ///< every live dot, deletes included
  /// A text key: its document in UTF-8, and its length in code points. Its context is the
  /// document's version (hand it to a text write to index in the document as read).
  std::string text{};
  uint64_t text_length = 0;
  /// A key with a value (a typed key keeps pieces of state that may all be removed).
  bool found() const { return core::typed::type_of(siblings) != core::typed::key_type::none; }
};

/// What a leader hands a link to ship: the log entries from `from` up to `next` that are for
/// the link's destination, to go to `ship_to` (the destination, or a detour on its behalf).
struct shipment {
  uint64_t from = 0;                ///< where the link stood when it asked (want)
  messages::node_index ship_to = 0; ///< where the link said it ships
  messages::frame batch;            ///< an encoded event_batch (empty when count == 0)
  uint64_t next = 0;                ///< where the link stands once it took this
  uint32_t count = 0;               ///< events in `batch`
};

/// A leader's state as a user or a test sees it.
struct node_status {
  messages::node_index node = 0;
  uint64_t incarnation = 0;
  messages::version_vector applied;
  uint64_t digest = 0; ///< storage::state_digest of the key state
  replica_stats stats;
  uint64_t log_end = 0;
  uint64_t log_begin = 0; ///< first entry still kept (compaction drops stable entries)
  uint64_t keys = 0;      ///< keys with any version, deletes included
  uint64_t live_keys = 0; ///< keys with a value (not only deletes)
  uint32_t pending_resolutions = 0;
  uint64_t mailbox_peak = 0; ///< most messages seen waiting in the leader's mailbox
  bool pull_in_flight = false;
  messages::version_vector retired; ///< retired incarnations -> final counters
  transfer_progress transfer;       ///< the state transfer this node receives, if any
  std::string epoch;                ///< the topology epoch (a dot), "" for the static one
  std::string topology;             ///< the topology routed by now (an edge list)
  std::string pending_topology;     ///< one that adds members, waiting to be stable ("": none)
  /// False while a node that started without data has not caught up (writes wait).
  bool caught_up = true;
  std::string resolver; ///< the resolver's name now (a hot swap changes it); "" if unnamed
};

/// Converts mlr's error to CAF's, keeping the message as the error's context.
inline caf::error make_error(errc code, std::string message) {
  return caf::error{static_cast<uint8_t>(code), caf::atom("mlr"),
                    caf::make_message(std::move(message))};
}

/// True when a request to another actor failed because no answer came in time: the
/// receiver may still carry it out (a write may still be applied).
inline bool is_request_timeout(const caf::error& err) {
  return err.category() == caf::atom("system") &&
         err.code() == static_cast<uint8_t>(caf::sec::request_timeout);
}

/// Converts CAF's error back to mlr's in one place, keeping its category: an mlr error
/// comes back with its code and message; a request that timed out is errc::timeout (its
/// outcome unknown); anything else is described by CAF.
inline error from_caf(const caf::error& err) {
  if (err.category() == caf::atom("mlr")) {
    auto& ctx = err.context();
    std::string msg = ctx.match_elements<std::string>() ? ctx.get_as<std::string>(0) : "";
    return error{static_cast<errc>(err.code()), msg};
  }
  if (is_request_timeout(err))
    return error{errc::timeout, "no answer in time; the request may still be carried out"};
  return error{errc::invalid_argument, caf::to_string(err)};
}

/// True when `err` carries mlr's `code`.
inline bool is(const caf::error& err, errc code) {
  return err.category() == caf::atom("mlr") && err.code() == static_cast<uint8_t>(code);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, causal_context& x) {
  return f(caf::meta::type_name("mlr.causal_context"), x.dots);
}

template <class Inspector> typename Inspector::result_type inspect(Inspector& f, get_result& x) {
  return f(caf::meta::type_name("mlr.get_result"), x.siblings, x.context, x.text, x.text_length);
}

template <class Inspector> typename Inspector::result_type inspect(Inspector& f, shipment& x) {
  return f(caf::meta::type_name("mlr.shipment"), x.from, x.ship_to, x.batch, x.next, x.count);
}

template <class Inspector> typename Inspector::result_type inspect(Inspector& f, node_status& x) {
  return f(caf::meta::type_name("mlr.node_status"), x.node, x.incarnation, x.applied, x.digest,
           x.stats, x.log_end, x.log_begin, x.keys, x.live_keys, x.pending_resolutions,
           x.mailbox_peak, x.pull_in_flight, x.retired, x.transfer, x.epoch, x.topology,
           x.pending_topology, x.caught_up, x.resolver);
}

} // namespace mlr::actors

// How CAF serializes the core's values that travel in actor messages (found by ADL in their
// namespace; the core itself knows nothing of CAF).
namespace mlr::core {

template <class Inspector> typename Inspector::result_type inspect(Inspector& f, replica_stats& x) {
#define MLR_STAT_FIELD(field, name, doc) , x.field
  return f(caf::meta::type_name("mlr.replica_stats") MLR_REPLICA_STATS(MLR_STAT_FIELD));
#undef MLR_STAT_FIELD
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, transfer_progress& x) {
  return f(caf::meta::type_name("mlr.transfer_progress"), x.active, x.from, x.keys_done,
           x.keys_total);
}

template <class Inspector> typename Inspector::result_type inspect(Inspector& f, write_request& x) {
  return f(caf::meta::type_name("mlr.write_request"), x.key, x.op, x.value, x.has_context,
           x.context, x.field, x.delta, x.index, x.count);
}

template <class Inspector> typename Inspector::result_type inspect(Inspector& f, text_edit& x) {
  return f(caf::meta::type_name("mlr.text_edit"), x.insert, x.index, x.text, x.count);
}

template <class Inspector> typename Inspector::result_type inspect(Inspector& f, change& x) {
  return f(caf::meta::type_name("mlr.change"), x.key, x.event, x.type, x.field, x.value, x.id,
           x.edits);
}

} // namespace mlr::core
