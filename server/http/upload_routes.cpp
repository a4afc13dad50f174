// The upload endpoints: POST /upload, GET /write-checkpoint2.json, POST /sync/checkpoint-request,
// and the WebSocket `upload` message. Batches run on the upload worker pool (never on an I/O
// thread); the logic is server/upload's. Spec: protocol/README.md ("Uploads", "Write checkpoints").
#include "server/http/detail/connection.h"

#include "protocol/wire/json_write.h"
#include "protocol/wire/upload.h"
#include "server/upload/uploader.h"

namespace sluice::http::detail {
namespace {

using protocol::ErrorCode;
using protocol::Status;
namespace wire = protocol::wire;
using Response = bhttp::response<bhttp::string_body>;

// What a worker returns (default-constructible, as an awaitable's value must be).
struct UploadOutcome {
    Status status;
    upload::UploadAnswer answer;
};

struct Checkpointed {
    Status status;
    std::int64_t number = 0;
};

Response respond(const Shared& shared, const Request& request, bhttp::status status, std::string body) {
    Response res{status, request.version()};
    res.set(bhttp::field::server, "sluice");
    res.set(bhttp::field::content_type, "application/json");
    res.set(bhttp::field::cache_control, "no-store");
    add_cors(shared, request, res.base());
    res.keep_alive(request.keep_alive());
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

Response fail(Shared& shared, const Request& request, const Status& status) {
    if (status_for(status.code()) == bhttp::status::unauthorized) {
        shared.stats.auth_failures++;
    }
    return respond(shared, request, status_for(status.code()), error_body(status));
}

std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

int hex_digit(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

// The percent-decoded value of query parameter `name`; nullopt when absent or malformed.
std::optional<std::string> query_param(std::string_view target, std::string_view name) {
    const auto q = target.find('?');
    if (q == std::string_view::npos) {
        return std::nullopt;
    }
    std::string_view query = target.substr(q + 1);
    while (!query.empty()) {
        const auto amp = query.find('&');
        const std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        const auto eq = pair.find('=');
        if (pair.substr(0, eq) != name || eq == std::string_view::npos) {
            continue;
        }
        std::string out;
        const std::string_view raw = pair.substr(eq + 1);
        for (std::size_t i = 0; i < raw.size(); ++i) {
            if (raw[i] == '+') {
                out += ' ';
            } else if (raw[i] == '%') {
                if (i + 2 >= raw.size()) {
                    return std::nullopt;
                }
                const int hi = hex_digit(raw[i + 1]);
                const int lo = hex_digit(raw[i + 2]);
                if (hi < 0 || lo < 0) {
                    return std::nullopt;
                }
                out += static_cast<char>(hi * 16 + lo);
                i += 2;
            } else {
                out += raw[i];
            }
        }
        return out;
    }
    return std::nullopt;
}

bool is_json(const Request& request) {
    const std::string_view type = request[bhttp::field::content_type];
    constexpr std::string_view kJson = "application/json";
    if (type.size() < kJson.size()) {
        return false;
    }
    for (std::size_t i = 0; i < kJson.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(type[i])) != kJson[i]) {
            return false;
        }
    }
    return true;
}

// Checks shared by the three routes; a failure response, or nothing.
std::optional<Response> admit(Shared& shared, const Request& request, bhttp::verb method,
                              protocol::Result<auth::VerifiedToken>& token) {
    if (request.method() != method) {
        return fail(shared, request,
                    {ErrorCode::kBadRequest,
                     fmt::format("use {} for {}", bhttp::to_string(method), path_of(request.target()))});
    }
    if (method == bhttp::verb::post && !is_json(request)) {
        return fail(shared, request, {ErrorCode::kUnsupportedMediaType, "send Content-Type: application/json"});
    }
    std::string authorization(request[bhttp::field::authorization]);
    if (authorization.empty()) {
        return fail(shared, request, {ErrorCode::kAuthMissing, "no token: send Authorization: Bearer <jwt>"});
    }
    token = shared.deps.verifier->verify(authorization);
    if (!token) {
        return fail(shared, request, token.status());
    }
    if (!shared.deps.uploader) {
        return fail(shared, request, {ErrorCode::kUploadNotSupported, "this server has no uploader"});
    }
    return std::nullopt;
}

std::string upload_body(const wire::UploadBatch& batch, const upload::UploadAnswer& answer) {
    std::string body;
    wire::encode_upload_response(body, batch, answer.result, answer.write_checkpoint, answer.replayed);
    return body;
}

net::awaitable<Response> post_upload(Shared& shared, const Request& request) {
    protocol::Result<auth::VerifiedToken> token = Status{ErrorCode::kAuthMissing, "no token"};
    if (auto refused = admit(shared, request, bhttp::verb::post, token)) {
        co_return std::move(*refused);
    }
    auto parsed =
        wire::parse_upload_request(request.body(), {shared.options.max_message_bytes, shared.options.max_upload_ops});
    if (!parsed) {
        co_return fail(shared, request, parsed.status());
    }
    const auth::VerifiedToken& user = token.value();
    const wire::UploadBatch& batch = parsed.value();
    UploadOutcome outcome = co_await net::co_spawn(
        shared.upload_workers.get_executor(),
        [&shared, &user, &batch]() -> net::awaitable<UploadOutcome> {
            auto done = shared.deps.uploader->upload(user, batch);
            co_return done ? UploadOutcome{Status::ok(), std::move(done).value()} : UploadOutcome{done.status(), {}};
        },
        net::use_awaitable);
    if (!outcome.status.is_ok()) {
        co_return fail(shared, request, outcome.status);
    }
    co_return respond(shared, request, bhttp::status::ok, upload_body(batch, outcome.answer));
}

net::awaitable<Response> get_write_checkpoint(Shared& shared, const Request& request) {
    protocol::Result<auth::VerifiedToken> token = Status{ErrorCode::kAuthMissing, "no token"};
    if (auto refused = admit(shared, request, bhttp::verb::get, token)) {
        co_return std::move(*refused);
    }
    const auto client_id = query_param(request.target(), "client_id");
    if (!client_id || client_id->empty()) {
        co_return fail(shared, request,
                       {ErrorCode::kRequestInvalidField, "write-checkpoint2.json needs ?client_id=<the client's id>"});
    }
    if (!wire::valid_id(*client_id)) {
        co_return fail(shared, request,
                       {ErrorCode::kRequestInvalidField,
                        fmt::format("write-checkpoint2.json: client_id must be 1 to {} bytes without NUL characters",
                                    wire::kMaxIdBytes)});
    }
    const std::string& user = token->user_id;
    const std::string& client = *client_id;
    Checkpointed made = co_await net::co_spawn(
        shared.upload_workers.get_executor(),
        [&shared, &user, &client]() -> net::awaitable<Checkpointed> {
            auto n = shared.deps.uploader->create_write_checkpoint(user, client);
            co_return n ? Checkpointed{Status::ok(), n.value()} : Checkpointed{n.status(), 0};
        },
        net::use_awaitable);
    if (!made.status.is_ok()) {
        co_return fail(shared, request, made.status);
    }
    std::string body = R"({"data":{"write_checkpoint":)";
    wire::append_quoted_u64(body, static_cast<std::uint64_t>(made.number));
    body += "}}";
    co_return respond(shared, request, bhttp::status::ok, std::move(body));
}

net::awaitable<Response> post_checkpoint_request(Shared& shared, const Request& request) {
    protocol::Result<auth::VerifiedToken> token = Status{ErrorCode::kAuthMissing, "no token"};
    if (auto refused = admit(shared, request, bhttp::verb::post, token)) {
        co_return std::move(*refused);
    }
    auto parsed = wire::parse_checkpoint_request(request.body(), shared.options.max_message_bytes);
    if (!parsed) {
        co_return fail(shared, request, parsed.status());
    }
    const std::string& user = token->user_id;
    const wire::CheckpointRequest& asked = parsed.value();
    Checkpointed made = co_await net::co_spawn(
        shared.upload_workers.get_executor(),
        [&shared, &user, &asked]() -> net::awaitable<Checkpointed> {
            auto s = shared.deps.uploader->request_write_checkpoint(user, asked.client_id, asked.checkpoint_request_id);
            co_return Checkpointed{s, asked.checkpoint_request_id};
        },
        net::use_awaitable);
    if (!made.status.is_ok()) {
        co_return fail(shared, request, made.status);
    }
    std::string body = R"({"data":{"checkpoint_request_id":)";
    wire::append_quoted_u64(body, static_cast<std::uint64_t>(made.number));
    body += "}}";
    co_return respond(shared, request, bhttp::status::ok, std::move(body));
}

// The WebSocket reply to an upload (upload_ack or upload_error).
std::string ws_reply(const wire::UploadMessage& message, const std::vector<wire::CrudOp>& ops,
                     const UploadOutcome& outcome) {
    std::string line;
    if (!outcome.status.is_ok()) {
        wire::encode_upload_error(line, message.upload_id, outcome.status.code(), outcome.status.message(),
                                  std::nullopt, std::nullopt);
        return line;
    }
    const auto& result = outcome.answer.result;
    if (result.outcome == wire::BatchOutcome::kRejected) {
        // Nothing applied: the first rejected op says why.
        for (std::size_t i = 0; i < result.ops.size(); ++i) {
            if (result.ops[i].status == wire::OpStatus::kRejected) {
                wire::encode_upload_error(line, message.upload_id, result.ops[i].code, result.ops[i].reason,
                                          i < ops.size() ? ops[i].op_id : std::nullopt,
                                          outcome.answer.write_checkpoint);
                return line;
            }
        }
    }
    wire::encode_upload_ack(line, message.upload_id, ops, result, outcome.answer.write_checkpoint);
    return line;
}

// What a WebSocket upload needs before it runs: the batch, or the reply that refuses it.
struct WsBatch {
    wire::UploadBatch batch;
    std::string refusal;  // a reply line; empty: run the batch
};

WsBatch ws_batch(Shared& shared, Pump& pump, const wire::UploadMessage& message) {
    WsBatch out;
    auto fail_with = [&](const Status& status) {
        wire::encode_upload_error(out.refusal, message.upload_id, status.code(), status.message(), std::nullopt,
                                  std::nullopt);
    };
    if (!shared.deps.uploader) {
        fail_with({ErrorCode::kUploadNotSupported, "this server has no uploader"});
        return out;
    }
    if (pump.session() == nullptr || pump.session()->request().client_id.value_or("").empty()) {
        fail_with({ErrorCode::kUploadNoClientId, "send sync_request with client_id before uploading"});
        return out;
    }
    auto ops = wire::parse_crud_ops(message.batch, shared.options.max_upload_ops);
    if (!ops) {
        fail_with(ops.status());
        return out;
    }
    out.batch.client_id = *pump.session()->request().client_id;
    out.batch.batch_id = message.upload_id;
    out.batch.ops = std::move(ops).value();
    return out;
}

}  // namespace

net::awaitable<std::optional<Response>> upload_route(Shared& shared, const Request& request) {
    const auto path = path_of(request.target());
    if (request.method() == bhttp::verb::options) {
        co_return std::nullopt;  // CORS preflight: server.cpp answers it for every path
    }
    if (path == "/upload") {
        co_return co_await post_upload(shared, request);
    }
    if (path == "/write-checkpoint2.json") {
        co_return co_await get_write_checkpoint(shared, request);
    }
    if (path == "/sync/checkpoint-request") {
        co_return co_await post_checkpoint_request(shared, request);
    }
    co_return std::nullopt;
}

net::awaitable<void> websocket_upload(Shared& shared, const auth::VerifiedToken& token, Pump& pump,
                                      const wire::UploadMessage& message) {
    std::vector<std::string> lines;
    WsBatch prepared = ws_batch(shared, pump, message);
    UploadOutcome outcome;
    if (prepared.refusal.empty()) {
        outcome = co_await net::co_spawn(
            shared.upload_workers.get_executor(),
            [&shared, &token, &prepared]() -> net::awaitable<UploadOutcome> {
                auto done = shared.deps.uploader->upload(token, prepared.batch);
                co_return done ? UploadOutcome{Status::ok(), std::move(done).value()}
                               : UploadOutcome{done.status(), {}};
            },
            net::use_awaitable);
        prepared.refusal = ws_reply(message, prepared.batch.ops, outcome);
    }
    lines.push_back(std::move(prepared.refusal));
    pump.push(lines);
}

}  // namespace sluice::http::detail
