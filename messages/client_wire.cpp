// The client protocol's messages (wire.hpp): requests and responses of the native client
// port (context tokens: context_token.cpp).

#include "messages/wire.hpp"

#include "messages/detail/capnp_io.hpp"
#include "messages/mlr.capnp.h"

#include <cctype>
#include <cstdio>
#include <cstdlib>

namespace mlr::messages {

using detail::as_bytes;
using detail::as_string;
using detail::malformed;
using detail::max_counter;
using detail::to_frame;
using detail::with_reader;

namespace {

// A typed request names one of the operations a client may send (clear is the node's own).
std::optional<error> read_typed(wire::ClientRequest::Typed::Reader t, client_request& out) {
  auto op = t.getOp();
  bool text = op == static_cast<uint8_t>(op_kind::text_insert) ||
              op == static_cast<uint8_t>(op_kind::text_delete);
  if ((op < static_cast<uint8_t>(op_kind::incr) || op > static_cast<uint8_t>(op_kind::hincr)) &&
      !text)
    return malformed("typed request has operation " + std::to_string(op) +
                     "; send 2 incr, 3 sadd, 4 srem, 5 hset, 6 hdel, 7 hincr, 9 text insert or "
                     "10 text delete");
  out.kind = client_request::op::typed;
  out.typed_op = static_cast<op_kind>(op);
  out.key = as_string(t.getKey());
  out.field = as_string(t.getField());
  out.value = as_string(t.getValue());
  out.delta = t.getDelta();
  out.index = t.getIndex();
  out.count = t.getCount();
  out.has_context = t.getHasContext();
  out.context = t.getContext();
  return std::nullopt;
}

void write_version(wire::RecordedVersion::Builder b, const version& v) {
  b.setNode(v.id.origin.node);
  b.setIncarnation(v.id.origin.incarnation);
  b.setCounter(v.id.counter);
  b.setHlc(v.time.value);
  b.setTombstone(v.tombstone);
  b.setValue(as_bytes(v.value));
  b.setKind(static_cast<uint8_t>(v.kind));
  b.setField(as_bytes(v.field));
}

std::optional<error> read_version(wire::RecordedVersion::Reader r, version& v) {
  if (r.getCounter() > max_counter || r.getKind() > max_value_kind)
    return malformed("conflict record version with counter " + std::to_string(r.getCounter()) +
                     " or kind " + std::to_string(r.getKind()) + " out of range");
  v.id = dot{source{r.getNode(), r.getIncarnation()}, r.getCounter()};
  v.time = hlc{r.getHlc()};
  v.tombstone = r.getTombstone();
  v.value = as_string(r.getValue());
  v.kind = static_cast<value_kind>(r.getKind());
  v.field = as_string(r.getField());
  return std::nullopt;
}

void write_conflicts(wire::ClientResponse::Builder root, const std::vector<conflict_record>& cs) {
  auto list = root.initConflicts(static_cast<unsigned>(cs.size()));
  for (unsigned i = 0; i < cs.size(); ++i) {
    auto& c = cs[i];
    auto b = list[i];
    b.setSeq(c.seq);
    b.setAtMs(c.at_ms);
    b.setKey(as_bytes(c.key));
    b.setResolver(c.resolver);
    auto vs = b.initVersions(static_cast<unsigned>(c.versions.size()));
    for (unsigned j = 0; j < c.versions.size(); ++j)
      write_version(vs[j], c.versions[j]);
    auto kept = b.initKept(static_cast<unsigned>(c.kept.size()));
    for (unsigned j = 0; j < c.kept.size(); ++j)
      write_version(kept[j], version{c.kept[j], {}, false, {}});
    b.setOutcome(!c.resolved ? 0 : c.merged ? 2 : 1);
    b.setValuesCut(c.values_cut);
    b.setReason(c.reason);
    b.setValue(as_bytes(c.value));
  }
}

std::optional<error> read_conflicts(wire::ClientResponse::Reader root,
                                    std::vector<conflict_record>& out) {
  for (auto b : root.getConflicts()) {
    conflict_record c;
    c.seq = b.getSeq();
    c.at_ms = b.getAtMs();
    c.key = as_string(b.getKey());
    c.resolver = b.getResolver();
    for (auto v : b.getVersions()) {
      c.versions.emplace_back();
      if (auto err = read_version(v, c.versions.back()))
        return err;
    }
    for (auto v : b.getKept()) {
      version k;
      if (auto err = read_version(v, k))
        return err;
      c.kept.push_back(k.id);
    }
    if (b.getOutcome() > 2)
      return malformed("conflict record outcome " + std::to_string(b.getOutcome()) +
                       "; 0 unresolved, 1 selected, 2 merged");
    c.resolved = b.getOutcome() != 0;
    c.merged = b.getOutcome() == 2;
    c.values_cut = b.getValuesCut();
    c.reason = b.getReason();
    c.value = as_string(b.getValue());
    out.push_back(std::move(c));
  }
  return std::nullopt;
}

} // namespace

frame encode(const client_request& x) {
  capnp::MallocMessageBuilder msg;
  auto root = msg.initRoot<wire::ClientRequest>();
  switch (x.kind) {
  case client_request::op::put: {
    auto p = root.initPut();
    p.setKey(as_bytes(x.key));
    p.setValue(as_bytes(x.value));
    p.setHasContext(x.has_context);
    p.setContext(x.context);
    break;
  }
  case client_request::op::get:
    root.initGet().setKey(as_bytes(x.key));
    break;
  case client_request::op::del: {
    auto d = root.initDel();
    d.setKey(as_bytes(x.key));
    d.setHasContext(x.has_context);
    d.setContext(x.context);
    break;
  }
  case client_request::op::status:
    root.setStatus();
    break;
  case client_request::op::set_topology:
    root.setSetTopology(x.value);
    break;
  case client_request::op::auth:
    root.setAuth(as_bytes(x.value));
    break;
  case client_request::op::typed: {
    auto t = root.initTyped();
    t.setOp(static_cast<uint8_t>(x.typed_op));
    t.setKey(as_bytes(x.key));
    t.setField(as_bytes(x.field));
    t.setValue(as_bytes(x.value));
    t.setDelta(x.delta);
    t.setIndex(x.index);
    t.setCount(x.count);
    t.setHasContext(x.has_context);
    t.setContext(x.context);
    break;
  }
  case client_request::op::read:
    root.setRead(as_bytes(x.key));
    break;
  case client_request::op::watch:
    root.setWatch(as_bytes(x.key));
    break;
  case client_request::op::conflicts: {
    auto c = root.initConflicts();
    c.setAfter(x.after);
    c.setLimit(x.limit);
    break;
  }
  case client_request::op::set_resolver:
    root.setSetResolver(x.value);
    break;
  }
  return to_frame(msg);
}

result<client_request> decode_client_request(const frame& f) {
  return with_reader<client_request>(f, decode_limits{}, "client request",
                                     [](capnp::MessageReader& r) -> result<client_request> {
                                       auto root = r.getRoot<wire::ClientRequest>();
                                       client_request out;
                                       switch (root.which()) {
                                       case wire::ClientRequest::PUT: {
                                         auto p = root.getPut();
                                         out.kind = client_request::op::put;
                                         out.key = as_string(p.getKey());
                                         out.value = as_string(p.getValue());
                                         out.has_context = p.getHasContext();
                                         out.context = p.getContext();
                                         break;
                                       }
                                       case wire::ClientRequest::GET:
                                         out.kind = client_request::op::get;
                                         out.key = as_string(root.getGet().getKey());
                                         break;
                                       case wire::ClientRequest::DEL: {
                                         auto d = root.getDel();
                                         out.kind = client_request::op::del;
                                         out.key = as_string(d.getKey());
                                         out.has_context = d.getHasContext();
                                         out.context = d.getContext();
                                         break;
                                       }
                                       case wire::ClientRequest::STATUS:
                                         out.kind = client_request::op::status;
                                         break;
                                       case wire::ClientRequest::SET_TOPOLOGY:
                                         out.kind = client_request::op::set_topology;
                                         out.value = root.getSetTopology();
                                         break;
                                       case wire::ClientRequest::AUTH:
                                         out.kind = client_request::op::auth;
                                         out.value = as_string(root.getAuth());
                                         break;
                                       case wire::ClientRequest::TYPED: {
                                         auto err = read_typed(root.getTyped(), out);
                                         if (err)
                                           return *err;
                                         break;
                                       }
                                       case wire::ClientRequest::READ:
                                         out.kind = client_request::op::read;
                                         out.key = as_string(root.getRead());
                                         break;
                                       case wire::ClientRequest::WATCH:
                                         out.kind = client_request::op::watch;
                                         out.key = as_string(root.getWatch());
                                         break;
                                       case wire::ClientRequest::CONFLICTS:
                                         out.kind = client_request::op::conflicts;
                                         out.after = root.getConflicts().getAfter();
                                         out.limit = root.getConflicts().getLimit();
                                         break;
                                       case wire::ClientRequest::SET_RESOLVER:
                                         out.kind = client_request::op::set_resolver;
                                         out.value = root.getSetResolver();
                                         break;
                                       default:
                                         return malformed("client request of an unknown kind");
                                       }
                                       return out;
                                     });
}

frame encode(const client_response& x) {
  capnp::MallocMessageBuilder msg;
  auto root = msg.initRoot<wire::ClientResponse>();
  switch (x.kind) {
  case client_response::op::written:
    root.setWritten(x.written);
    break;
  case client_response::op::value: {
    auto v = root.initValue();
    auto sib = v.initSiblings(static_cast<unsigned>(x.siblings.size()));
    for (unsigned i = 0; i < x.siblings.size(); ++i)
      sib.set(i, as_bytes(x.siblings[i]));
    v.setContext(x.context);
    break;
  }
  case client_response::op::status:
    root.setStatus(x.status_json);
    break;
  case client_response::op::failure: {
    auto fl = root.initFailure();
    fl.setCode(static_cast<uint8_t>(x.fail.code));
    fl.setMessage(x.fail.message);
    break;
  }
  case client_response::op::number:
    root.setNumber(x.number);
    break;
  case client_response::op::typed: {
    auto t = root.initTyped();
    t.setType(x.type_name);
    auto items = t.initItems(static_cast<unsigned>(x.items.size()));
    for (unsigned i = 0; i < x.items.size(); ++i)
      items.set(i, as_bytes(x.items[i]));
    t.setContext(x.context);
    break;
  }
  case client_response::op::change: {
    auto c = root.initChange();
    c.setKey(as_bytes(x.key));
    c.setEvent(x.event);
    c.setType(x.type_name);
    c.setField(as_bytes(x.field));
    c.setValue(as_bytes(x.value));
    c.setDot(x.written);
    auto es = c.initEdits(static_cast<unsigned>(x.edits.size()));
    for (unsigned i = 0; i < x.edits.size(); ++i) {
      es[i].setInsert(x.edits[i].insert);
      es[i].setIndex(x.edits[i].index);
      es[i].setText(as_bytes(x.edits[i].text));
      es[i].setCount(x.edits[i].count);
    }
    break;
  }
  case client_response::op::conflicts:
    write_conflicts(root, x.conflicts);
    break;
  }
  return to_frame(msg);
}

result<client_response> decode_client_response(const frame& f) {
  return with_reader<client_response>(
    f, decode_limits{}, "client response", [](capnp::MessageReader& r) -> result<client_response> {
      auto root = r.getRoot<wire::ClientResponse>();
      client_response out;
      switch (root.which()) {
      case wire::ClientResponse::WRITTEN:
        out.kind = client_response::op::written;
        out.written = root.getWritten();
        break;
      case wire::ClientResponse::VALUE: {
        out.kind = client_response::op::value;
        for (auto s : root.getValue().getSiblings())
          out.siblings.push_back(as_string(s));
        out.context = root.getValue().getContext();
        break;
      }
      case wire::ClientResponse::STATUS:
        out.kind = client_response::op::status;
        out.status_json = root.getStatus();
        break;
      case wire::ClientResponse::FAILURE:
        out.kind = client_response::op::failure;
        out.fail =
          failure{static_cast<errc>(root.getFailure().getCode()), root.getFailure().getMessage()};
        break;
      case wire::ClientResponse::NUMBER:
        out.kind = client_response::op::number;
        out.number = root.getNumber();
        break;
      case wire::ClientResponse::TYPED:
        out.kind = client_response::op::typed;
        out.type_name = root.getTyped().getType();
        for (auto s : root.getTyped().getItems())
          out.items.push_back(as_string(s));
        out.context = root.getTyped().getContext();
        break;
      case wire::ClientResponse::CHANGE: {
        auto c = root.getChange();
        out.kind = client_response::op::change;
        out.key = as_string(c.getKey());
        out.event = c.getEvent();
        out.type_name = c.getType();
        out.field = as_string(c.getField());
        out.value = as_string(c.getValue());
        out.written = c.getDot();
        for (auto e : c.getEdits())
          out.edits.push_back(client_response::text_edit{e.getInsert(), e.getIndex(),
                                                         as_string(e.getText()), e.getCount()});
        break;
      }
      case wire::ClientResponse::CONFLICTS:
        out.kind = client_response::op::conflicts;
        if (auto err = read_conflicts(root, out.conflicts))
          return *err;
        break;
      default:
        return malformed("client response of an unknown kind");
      }
      return out;
    });
}

} // namespace mlr::messages
