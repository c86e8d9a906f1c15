// The operation part of an event on the wire (detail/codec_ops.hpp).

#include "messages/detail/codec_ops.hpp"

#include "messages/detail/capnp_io.hpp"

#include <string>

namespace mlr::messages::detail {

namespace {

bool has_field(op_kind op) {
  return op == op_kind::sadd || op == op_kind::srem || op == op_kind::hset || op == op_kind::hdel ||
         op == op_kind::hincr;
}

void set(wire::TextRef::Builder& b, const text_ref& r,
         const std::function<uint16_t(const source&)>& index_of) {
  b.setSource(index_of(r.origin));
  b.setSeq(r.seq);
}

void write_text(wire::Event::Builder out, const event& e,
                const std::function<uint16_t(const source&)>& index_of) {
  static const text_payload none;
  auto& t = e.text ? *e.text : none;
  if (e.op == op_kind::text_delete) {
    auto rs = out.initTextDelete(static_cast<unsigned>(t.ranges.size()));
    for (unsigned i = 0; i < t.ranges.size(); ++i) {
      rs[i].setSource(index_of(t.ranges[i].origin));
      rs[i].setSeq(t.ranges[i].seq);
      rs[i].setLen(t.ranges[i].len);
    }
    return;
  }
  auto ins = out.initTextInsert();
  ins.setText(as_bytes(e.value));
  ins.setFirstSeq(t.first_seq);
  if (t.left) {
    auto b = ins.initLeft();
    set(b, *t.left, index_of);
  }
  if (t.right) {
    auto b = ins.initRight();
    set(b, *t.right, index_of);
  }
}

// Seqs and lengths are bounded like counters (2^48 - 1), so that seq + len cannot wrap.
std::optional<error> read_ref(wire::TextRef::Reader in, const std::vector<source>& table,
                              uint64_t counter, text_ref& out) {
  if (in.getSource() >= table.size())
    return malformed("text operation of event " + std::to_string(counter) + " refers to source " +
                     std::to_string(in.getSource()) + " but the table has " +
                     std::to_string(table.size()));
  if (in.getSeq() > max_counter)
    return malformed("text operation of event " + std::to_string(counter) + " names seq " +
                     std::to_string(in.getSeq()) + "; seqs run to 2^48 - 1");
  out = text_ref{table[in.getSource()], in.getSeq()};
  return std::nullopt;
}

std::optional<error> read_text(wire::Event::Reader in, const std::vector<source>& table, event& e) {
  auto t = std::make_shared<text_payload>();
  auto counter = in.getCounter();
  if (in.which() == wire::Event::TEXT_DELETE) {
    e.op = op_kind::text_delete;
    for (auto r : in.getTextDelete()) {
      if (r.getSource() >= table.size() || r.getSeq() > max_counter || r.getLen() == 0 ||
          r.getLen() > max_counter)
        return malformed("text delete of event " + std::to_string(counter) +
                         " names a range with source " + std::to_string(r.getSource()) + ", seq " +
                         std::to_string(r.getSeq()) + ", length " + std::to_string(r.getLen()) +
                         "; sources index the table, seqs and lengths run from 1 to 2^48 - 1");
      t->ranges.push_back(text_range{table[r.getSource()], r.getSeq(), r.getLen()});
    }
    e.text = std::move(t);
    return std::nullopt;
  }
  e.op = op_kind::text_insert;
  auto ins = in.getTextInsert();
  e.value = as_string(ins.getText());
  if (ins.getFirstSeq() > max_counter)
    return malformed("text insert of event " + std::to_string(counter) + " starts at seq " +
                     std::to_string(ins.getFirstSeq()) + "; seqs run to 2^48 - 1");
  t->first_seq = ins.getFirstSeq();
  if (ins.hasLeft()) {
    t->left.emplace();
    if (auto bad = read_ref(ins.getLeft(), table, counter, *t->left))
      return bad;
  }
  if (ins.hasRight()) {
    t->right.emplace();
    if (auto bad = read_ref(ins.getRight(), table, counter, *t->right))
      return bad;
  }
  e.text = std::move(t);
  return std::nullopt;
}

} // namespace

void write_op(wire::Event::Builder out, const event& e,
              const std::function<uint16_t(const source&)>& index_of) {
  switch (e.op) {
  case op_kind::put:
    out.setPut(as_bytes(e.value));
    break;
  case op_kind::del:
    out.setDel();
    break;
  case op_kind::incr:
    out.setIncr(e.total);
    break;
  case op_kind::sadd:
    out.setSadd();
    break;
  case op_kind::srem:
    out.setSrem();
    break;
  case op_kind::hset:
    out.setHset(as_bytes(e.value));
    break;
  case op_kind::hdel:
    out.setHdel();
    break;
  case op_kind::hincr:
    out.setHincr(e.total);
    break;
  case op_kind::clear:
    out.setClear();
    break;
  case op_kind::text_insert:
  case op_kind::text_delete:
    write_text(out, e, index_of);
    break;
  }
  if (!e.field.empty())
    out.setField(as_bytes(e.field));
  if (e.text && !is_text_op(e.op))
    out.setOverText(true);
  if (e.removed.empty())
    return;
  auto rs = out.initRemoved(static_cast<unsigned>(e.removed.size()));
  for (unsigned i = 0; i < e.removed.size(); ++i) {
    auto& r = e.removed[i];
    if (!r.field.empty())
      rs[i].setField(as_bytes(r.field));
    rs[i].setSource(index_of(r.origin));
    rs[i].setUpto(r.upto);
    rs[i].setTotal(r.total);
    rs[i].setInMap(r.in_map);
  }
}

std::optional<error> read_op(wire::Event::Reader in, const std::vector<source>& table, event& e) {
  switch (in.which()) {
  case wire::Event::PUT:
    e.op = op_kind::put;
    e.value = as_string(in.getPut());
    break;
  case wire::Event::DEL:
    e.op = op_kind::del;
    break;
  case wire::Event::INCR:
    e.op = op_kind::incr;
    e.total = in.getIncr();
    break;
  case wire::Event::SADD:
    e.op = op_kind::sadd;
    break;
  case wire::Event::SREM:
    e.op = op_kind::srem;
    break;
  case wire::Event::HSET:
    e.op = op_kind::hset;
    e.value = as_string(in.getHset());
    break;
  case wire::Event::HDEL:
    e.op = op_kind::hdel;
    break;
  case wire::Event::HINCR:
    e.op = op_kind::hincr;
    e.total = in.getHincr();
    break;
  case wire::Event::CLEAR:
    e.op = op_kind::clear;
    break;
  case wire::Event::TEXT_INSERT:
  case wire::Event::TEXT_DELETE:
    if (auto bad = read_text(in, table, e))
      return bad;
    break;
  default:
    return malformed("event " + std::to_string(in.getCounter()) +
                     " has an operation this node does not know (a newer node's?)");
  }
  e.field = as_string(in.getField());
  if (in.getOverText() && !is_text_op(e.op))
    e.text = std::make_shared<text_payload>();
  if (!e.field.empty() && !has_field(e.op))
    return malformed("event " + std::to_string(in.getCounter()) +
                     " names a field, but its operation takes none");
  for (auto r : in.getRemoved()) {
    if (r.getSource() >= table.size())
      return malformed("counter removal refers to source " + std::to_string(r.getSource()) +
                       " but the table has " + std::to_string(table.size()));
    if (r.getUpto() == 0 || r.getUpto() > max_counter)
      return malformed("counter removal has counter " + std::to_string(r.getUpto()) +
                       "; counters run from 1 to 2^48 - 1");
    e.removed.push_back(counter_removal{as_string(r.getField()), table[r.getSource()], r.getUpto(),
                                        r.getTotal(), r.getInMap()});
  }
  return std::nullopt;
}

} // namespace mlr::messages::detail
