// The version of the wire protocol Sluice speaks; mirrors the latest entry of the version log in
// protocol/README.md (a test pins the two together).
#pragma once

namespace sluice::protocol::wire {

inline constexpr int kProtocolVersion = 3;

}  // namespace sluice::protocol::wire
