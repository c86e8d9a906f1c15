#pragma once
// Under the sanitizers (about ten times slower) a test replays the first part of a
// sequential trace, and checks it against what a plain string reaches by applying the same
// edits by index; the Release run of the same suite replays the whole trace against its
// endContent.

#include "../bench/editing_traces.hpp"
#include "core/text.hpp"

namespace mlr::testing {

/// The first 1/`divisor` of sequential trace `t`'s edits under the sanitizers (with the
/// document they make as end_content), else `t` itself.
inline traces::trace sanitized_share(traces::trace t, size_t divisor) {
#ifdef MLR_SANITIZED
  size_t total = 0;
  for (auto& tx : t.txns)
    total += tx.patches.size();
  size_t keep = total / divisor, n = 0;
  std::u32string doc;
  std::vector<traces::transaction> txns;
  for (auto& tx : t.txns) {
    if (n >= keep)
      break;
    auto cut = tx;
    cut.patches.clear();
    for (auto& p : tx.patches)
      if (n++ < keep) {
        doc.erase(p.position, p.deleted);
        doc.insert(p.position, *core::text::from_utf8(p.inserted));
        cut.patches.push_back(p);
      }
    txns.push_back(std::move(cut));
  }
  t.txns = std::move(txns);
  t.end_content = core::text::to_utf8(doc);
#else
  (void)divisor;
#endif
  return t;
}

} // namespace mlr::testing
