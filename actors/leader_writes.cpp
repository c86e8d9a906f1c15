// The leader's write path: what refuses a write, applying writes, writes that wait for
// their contexts (see write_all in detail/leader_impl.hpp).

#include "actors/detail/leader_impl.hpp"

#include "core/text.hpp"
#include "core/typed.hpp"

#include <caf/actor_system.hpp>
#include <caf/send.hpp>

namespace mlr::actors::detail {

std::optional<caf::error> leader_impl::refusal(const std::vector<write_request>& ws) {
  if (auto err = removed_error())
    return err;
  if (!store_error_.empty())
    return make_error(errc::storage_full, "write refused: " + store_error_);
  std::map<std::string, core::typed::key_type> types; // of the typed writes before
  for (auto& w : ws) {
    if (reserved(w.key))
      return reserved_error();
    if (auto err = size_error(w))
      return err; // nothing of the message is written
    if (auto err = type_error(w, types))
      return err;
  }
  return std::nullopt;
}

std::optional<caf::error>
leader_impl::type_error(const write_request& w,
                        std::map<std::string, core::typed::key_type>& types) {
  using messages::op_kind;
  if (w.op == op_kind::put || w.op == op_kind::del)
    return std::nullopt;
  if (w.op == op_kind::clear)
    return make_error(errc::invalid_argument, "clear is what a delete of a typed key becomes; "
                                              "write a delete instead");
  if (w.op == op_kind::text_insert && !core::text::from_utf8(w.value))
    return make_error(errc::invalid_argument,
                      "ERR the text to insert is not valid UTF-8; nothing was written");
  auto wanted = core::typed::type_of(w.op);
  auto [seen, first] = types.emplace(w.key, wanted);
  auto refused = core::typed::prepare(replica_.versions(w.key), w, replica_.self()).refused;
  if (refused.empty() && !first && seen->second != wanted)
    refused = "WRONGTYPE Operation against a key holding the wrong kind of value";
  if (refused.empty())
    return std::nullopt;
  return make_error(errc::refused, refused);
}

std::vector<dot> leader_impl::apply_writes(const std::vector<write_request>& ws) {
  using messages::op_kind;
  std::vector<dot> dots;
  dots.reserve(ws.size());
  replies_.clear();
  for (auto& w : ws) {
    if (w.op == op_kind::put || w.op == op_kind::del) {
      dots.push_back(replica_.write(w, now()));
      replies_.push_back(0);
      continue;
    }
    if (messages::is_text_op(w.op)) { // answered by the document's new length
      dots.push_back(replica_.write(w, now()));
      replies_.push_back(static_cast<int64_t>(replica_.text_length(w.key).value_or(0)));
      continue;
    }
    auto before = replica_.versions(w.key);
    dots.push_back(replica_.write(w, now()));
    replies_.push_back(core::typed::reply(before, replica_.versions(w.key), w));
  }
  execute();
  return dots;
}

caf::error leader_impl::catching_up_error() {
  return make_error(errc::retry_later,
                    "this node started without data and has not caught up with its peers " +
                      std::string("within ") + std::to_string(cfg_.context_wait.count()) +
                      " ms (it holds " + std::to_string(replica_.applied().total()) +
                      " events); nothing was written: retry shortly, or write at another " +
                      "node");
}

caf::error leader_impl::context_error(const std::vector<dot>& missing) {
  std::string names;
  for (size_t i = 0; i < missing.size() && i < 3; ++i)
    names += (i ? ", " : "") + messages::to_string(missing[i]);
  if (missing.size() > 3)
    names += " and " + std::to_string(missing.size() - 3) + " more";
  return make_error(errc::retry_later,
                    "the context names " + names + ", which this node has not received " +
                      "within " + std::to_string(cfg_.context_wait.count()) +
                      " ms; nothing was written: write at the node you read from, or retry " +
                      "once it has replicated");
}

void leader_impl::retry_waiting() {
  if (waiting_.empty() || retrying_)
    return;
  retrying_ = true;
  auto now_ms = steady_ms();
  std::vector<waiting_write> keep;
  auto batch = std::move(waiting_);
  waiting_.clear();
  for (auto& w : batch)
    if (!w.retry(now_ms >= w.deadline_ms))
      keep.push_back(std::move(w));
  keep.insert(keep.end(), std::make_move_iterator(waiting_.begin()),
              std::make_move_iterator(waiting_.end()));
  waiting_ = std::move(keep);
  if (waiting_.empty())
    replica_.clear_wanted();
  retrying_ = false;
}

std::optional<caf::error> leader_impl::removed_error() {
  if (replica_.is_live(cfg_.replica.self))
    return std::nullopt;
  std::string live;
  if (current_routing_)
    for (size_t i = 0; i < current_routing_->members.size(); ++i)
      if (i < current_routing_->live.size() && current_routing_->live[i])
        live += (live.empty() ? "" : ", ") + current_routing_->members[i];
  return make_error(errc::refused, "this node was removed from the cluster (topology epoch " +
                                     epoch_name() + "); nothing was done: use a live member (" +
                                     live + ")");
}

std::optional<caf::error> leader_impl::size_error(const write_request& w) {
  if (w.key.size() > cfg_.max_key_bytes)
    return make_error(errc::too_large, "key is " + std::to_string(w.key.size()) +
                                         " bytes; the limit is " +
                                         std::to_string(cfg_.max_key_bytes) + " (--max-key-bytes)");
  if (w.field.size() > cfg_.max_key_bytes)
    return make_error(errc::too_large, "field is " + std::to_string(w.field.size()) +
                                         " bytes; the limit is " +
                                         std::to_string(cfg_.max_key_bytes) + " (--max-key-bytes)");
  if (w.value.size() > cfg_.max_value_bytes)
    return make_error(errc::too_large,
                      "value is " + std::to_string(w.value.size()) + " bytes; the limit is " +
                        std::to_string(cfg_.max_value_bytes) + " (--max-value-bytes)");
  return std::nullopt;
}

caf::error leader_impl::reserved_error() {
  return make_error(errc::refused,
                    "keys starting with \\0mlr: are the cluster's own; choose another key");
}

caf::error leader_impl::not_durable_error() {
  return make_error(errc::storage_full,
                    "write not durable: " + store_error_ +
                      "; it stays in memory and becomes durable if space is freed before "
                      "the node stops, so its outcome is unknown");
}

} // namespace mlr::actors::detail
