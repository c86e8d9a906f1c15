// libFuzzer target: everything an unproven connection can send or answer (the header, the
// hello, the challenge, the proof, the welcome, a failure) and the client requests.
#include "messages/wire.hpp"

#include <cstdint>

using namespace mlr::messages;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  frame f;
  f.bytes.assign(data, data + size);
  (void)decode_header(f);
  (void)decode_hello(f);
  (void)decode_hello_reply(f);
  (void)decode_proof(f);
  (void)decode_welcome(f);
  (void)decode_failure(f);
  (void)decode_client_request(f);
  (void)decode_client_response(f);
  return 0;
}
