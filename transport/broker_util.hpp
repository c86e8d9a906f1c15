#pragma once
// Small pieces every broker of mlr_transport needs: open a listening socket and report the
// outcome to the thread that started the broker, take a new connection, name a peer, and
// cut a connection's bytes into (header, payload) message pairs.

#include "messages/wire.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/io/broker.hpp>
#include <caf/io/typed_broker.hpp>
#include <caf/send.hpp>
#include <caf/system_messages.hpp>

#include <chrono>

#include <future>
#include <memory>
#include <optional>
#include <string>

namespace mlr::actors {

/// Where a broker reports the port it listens on (or why it could not listen).
using listen_promise = std::shared_ptr<std::promise<result<uint16_t>>>;

/// Opens host:port for `what` ("peers", "clients", ...). On failure the broker quits and
/// the error names the address; returns false then.
inline bool open_listener(caf::io::abstract_broker* self, const std::string& host, uint16_t port,
                          const listen_promise& opened, const std::string& what) {
  auto doorman = self->add_tcp_doorman(port, host.c_str(), true);
  if (!doorman) {
    opened->set_value(error{errc::invalid_argument, "cannot listen for " + what + " on " + host +
                                                      ":" + std::to_string(port) + ": " +
                                                      self->system().render(doorman.error())});
    self->quit();
    return false;
  }
  opened->set_value(doorman->second);
  return true;
}

/// Sends `Tick` to the broker every `every`, from a linked helper actor rather than as a
/// delayed message from the broker to itself. CAF 0.17 stops the multiplexer before the
/// scheduler's clock when an actor system shuts down; a delayed message the clock delivers
/// in between to a broker that has already terminated is never freed, and neither is the
/// broker (LeakSanitizer saw 1,664 bytes in 9 allocations in test_node under load). The
/// helper is an ordinary actor: the system waits for it before stopping the multiplexer, and
/// it exits with the broker.
template <class Tick, class Broker>
void start_ticker(Broker* self, std::chrono::milliseconds every) {
  auto broker = caf::actor_cast<typename Broker::actor_hdl>(self);
  self->template spawn<caf::linked>([broker, every](caf::event_based_actor* t) -> caf::behavior {
    // Whatever the broker ends with (CAF ignores a linked exit with reason normal by
    // default), the helper ends too, and lets go of the broker.
    t->set_exit_handler([t](caf::exit_msg& msg) { t->quit(msg.reason); });
    t->delayed_send(t, every, Tick::value);
    return {[=](Tick) {
      caf::anon_send(broker, Tick::value);
      t->delayed_send(t, every, Tick::value);
    }};
  });
}

/// What a broker whose start failed (it has quit already) behaves like: nothing.
template <class Behavior> Behavior no_behavior() {
  return Behavior{typename Behavior::unsafe_init{}, caf::behavior{}};
}

/// Starts reading a new connection; returns "address:port" of its other end, for logs.
inline std::string accept_connection(caf::io::abstract_broker* self,
                                     caf::io::connection_handle hdl) {
  self->configure_read(hdl, caf::io::receive_policy::at_most(64 * 1024));
  return self->remote_addr(hdl) + ":" + std::to_string(self->remote_port(hdl));
}

/// Cuts a connection's bytes into (header, payload) pairs.
class message_reader {
public:
  explicit message_reader(size_t max_frame_bytes) : splitter_(max_frame_bytes) {}

  void set_max_frame_bytes(size_t n) { splitter_.set_max(n); }
  /// Bytes received and not yet handed out as a whole message.
  size_t buffered() const { return splitter_.buffered(); }

  /// Calls fn(header, payload) for every whole message, stopping at the first error that
  /// `fn` returns; the returned error means the connection must be closed.
  template <class F> std::optional<error> feed(const std::vector<char>& bytes, F fn) {
    return feed(bytes, fn, [] { return false; });
  }
  /// The same, but stops (keeping the rest buffered) while `paused()` holds; `drain` goes on.
  template <class F, class P>
  std::optional<error> feed(const std::vector<char>& bytes, F fn, P paused) {
    splitter_.append(bytes.data(), bytes.size());
    return drain(fn, paused);
  }
  template <class F, class P> std::optional<error> drain(F fn, P paused) {
    for (;;) {
      if (paused())
        return std::nullopt;
      auto next = splitter_.next();
      if (!next)
        return next.err();
      if (!*next)
        return std::nullopt;
      auto f = std::move(**next);
      if (!header_) {
        auto h = messages::decode_header(f);
        if (!h)
          return h.err();
        header_ = *h;
        continue;
      }
      auto h = *header_;
      header_.reset();
      if (auto err = fn(h, f))
        return err;
    }
  }

private:
  messages::frame_splitter splitter_;
  std::optional<messages::wire_header> header_;
};

} // namespace mlr::actors
