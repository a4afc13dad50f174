// systemd's readiness protocol (sd_notify): "READY=1", "STOPPING=1", "STATUS=..." sent as a datagram
// to $NOTIFY_SOCKET. A no-op when the variable is unset (not started by systemd or a test harness).
#pragma once

#include <string_view>

namespace sluice::core {

// Sends one notification; returns false if NOTIFY_SOCKET is set but the send failed.
bool service_notify(std::string_view state);

}  // namespace sluice::core
