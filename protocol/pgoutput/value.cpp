// JSON forms of decoded values (see value.h).
#include "protocol/pgoutput/value.h"

#include "protocol/wire/json_write.h"

#include <array>
#include <charconv>
#include <cmath>

namespace sluice::protocol::pgoutput {

void append_json(std::string& out, const Value& value) {
    switch (value.type) {
        case ValueType::kNull:
        case ValueType::kBlob:
            out += "null";
            break;
        case ValueType::kInteger:
            out += std::to_string(value.integer);
            break;
        case ValueType::kReal:
            if (std::isfinite(value.real)) {
                append_js_number(out, value.real);
            } else {
                out += "null";
            }
            break;
        case ValueType::kText:
            append_json_string(out, value.bytes);
            break;
    }
}

std::string to_json(const Value& value) {
    std::string out;
    append_json(out, value);
    return out;
}

}  // namespace sluice::protocol::pgoutput
