// SyncSession (see sync_session.h); line order: protocol/README.md, "Order on a stream".
#include "server/sync/sync_session.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "protocol/wire/line_encoder.h"

namespace sluice::sync {
namespace {

using protocol::ErrorCode;
using protocol::Status;
namespace wire = protocol::wire;

// The lookup index as the rules engine reads it; remembers a storage failure (the interface cannot
// return one) so the caller reports it after resolve_buckets.
class StorageLookups final : public config::rules::LookupSource {
public:
    StorageLookups(SyncStorage& storage, std::int64_t rules_version, std::int64_t checkpoint_op_id)
        : m_storage(storage), m_rules_version(rules_version), m_checkpoint_op_id(checkpoint_op_id) {}
    std::vector<std::vector<std::string>> lookup(std::span<const std::string> keys) override {
        auto result = m_storage.lookup(keys, m_rules_version, m_checkpoint_op_id);
        if (!result) {
            m_failure = result.status();
            return std::vector<std::vector<std::string>>(keys.size());
        }
        return std::move(result).value();
    }
    [[nodiscard]] const Status& failure() const { return m_failure; }

private:
    SyncStorage& m_storage;
    std::int64_t m_rules_version;
    std::int64_t m_checkpoint_op_id;
    Status m_failure;
};

wire::OpType op_type(int op) {
    switch (op) {
        case 2:
            return wire::OpType::kRemove;
        case 3:
            return wire::OpType::kMove;
        case 4:
            return wire::OpType::kClear;
        default:
            return wire::OpType::kPut;
    }
}

// The checkpoint's `streams`: the resolution's, one to one, plus an error for each subscription past
// the connection's limit (those were not resolved; they bring no buckets).
std::vector<wire::StreamInfo> stream_infos(const config::rules::Resolution& resolution,
                                           const wire::SyncRequest& request, std::size_t max_subscriptions) {
    std::vector<wire::StreamInfo> streams;
    streams.reserve(resolution.streams.size());
    for (const auto& s : resolution.streams) {
        wire::StreamInfo info{s.name, s.is_default, {}};
        for (const auto& e : s.errors) {
            info.errors.push_back({e.subscription ? std::optional(static_cast<std::uint32_t>(*e.subscription))
                                                  : std::nullopt,
                                   e.message});
        }
        streams.push_back(std::move(info));
    }
    if (!request.streams) {
        return streams;
    }
    const auto& subscriptions = request.streams->subscriptions;
    for (std::size_t i = max_subscriptions; i < subscriptions.size(); ++i) {
        auto it = std::find_if(streams.begin(), streams.end(),
                               [&](const auto& s) { return s.name == subscriptions[i].stream; });
        if (it == streams.end()) {
            it = streams.insert(streams.end(), wire::StreamInfo{subscriptions[i].stream, false, {}});
        }
        it->errors.push_back({static_cast<std::uint32_t>(i),
                              fmt::format("{}: more than limits.max_subscriptions_per_connection ({}) subscriptions; "
                                          "this one is ignored",
                                          protocol::error_id(ErrorCode::kTooManySubscriptions), max_subscriptions)});
    }
    return streams;
}

std::optional<std::string_view> non_empty(const std::string& s) {
    return s.empty() ? std::nullopt : std::optional<std::string_view>(s);
}

}  // namespace

protocol::Result<std::unique_ptr<SyncSession>> SyncSession::create(std::shared_ptr<const config::rules::RuleSet> rules,
                                                                   auth::VerifiedToken token,
                                                                   protocol::wire::SyncRequest request,
                                                                   SessionLimits limits, std::int64_t now) {
    return create(std::make_shared<const RulesSource>(std::move(rules)), std::move(token), std::move(request), limits,
                  now);
}

protocol::Result<std::unique_ptr<SyncSession>> SyncSession::create(std::shared_ptr<const RulesSource> rules,
                                                                   auth::VerifiedToken token,
                                                                   protocol::wire::SyncRequest request,
                                                                   SessionLimits limits, std::int64_t now) {
    auto rules_request = config::rules::Request::from_json(token.claims_json, request.parameters);
    if (!rules_request) {
        return rules_request.status();
    }
    return std::unique_ptr<SyncSession>(new SyncSession(std::move(rules), std::move(token), std::move(request),
                                                        std::move(rules_request).value(), limits, now));
}

SyncSession::SyncSession(std::shared_ptr<const RulesSource> rules, auth::VerifiedToken token,
                         protocol::wire::SyncRequest request, config::rules::Request rules_request,
                         SessionLimits limits, std::int64_t now)
    : m_source(std::move(rules)),
      m_token(std::move(token)),
      m_request(std::move(request)),
      m_rules_request(std::move(rules_request)),
      m_limits(limits),
      m_next_keepalive(now + limits.keepalive_seconds) {
    for (const auto& b : m_request.buckets) {
        m_after[b.name] = static_cast<std::int64_t>(b.after);
    }
    apply_streams();
}

void SyncSession::apply_streams() {
    if (!m_request.streams) {
        return;  // a client without Sync Streams: the defaults (bucket_definitions, auto_subscribe)
    }
    const auto& requested = m_request.streams->subscriptions;
    std::vector<config::rules::StreamSubscription> subscriptions;
    subscriptions.reserve(std::min(requested.size(), m_limits.max_subscriptions));
    for (std::size_t i = 0; i < requested.size() && i < m_limits.max_subscriptions; ++i) {
        const auto& s = requested[i];
        subscriptions.push_back({s.stream, s.parameters, s.override_priority});
    }
    m_rules_request.set_streams(m_request.streams->include_defaults, std::move(subscriptions));
}

void SyncSession::update_streams(protocol::wire::StreamsRequest streams) {
    m_request.streams = std::move(streams);
    apply_streams();
    m_started = false;
    m_resolve_now = true;
    for (std::size_t i = m_next; i < m_pending.size(); ++i) {
        m_unfinished.insert(m_pending[i].bucket);
    }
    m_pending.clear();
    m_next = 0;
    if (m_state == SessionState::kDownloading) {
        m_state = SessionState::kWaiting;
    }
}

bool SyncSession::has_work(std::int64_t latest) const {
    switch (m_state) {
        case SessionState::kDownloading:
            return true;
        case SessionState::kWaiting:
            return latest > m_checkpoint || (m_resolve_now && latest > 0);
        case SessionState::kEnded:
            return false;
    }
    return false;
}

Status SyncSession::step(SyncStorage& storage, std::int64_t latest, std::vector<std::string>& out) {
    if (m_state == SessionState::kWaiting && (latest > m_checkpoint || (m_resolve_now && latest > 0))) {
        if (auto status = begin_checkpoint(storage, latest, out); !status) {
            return status;
        }
    }
    std::size_t bytes = 0;
    for (const auto& line : out) {
        bytes += line.size();
    }
    while (m_state == SessionState::kDownloading && bytes < m_limits.step_bytes) {
        if (auto status = produce_data(storage, bytes, out); !status) {
            return status;
        }
    }
    return Status::ok();
}

Status SyncSession::begin_checkpoint(SyncStorage& storage, std::int64_t latest, std::vector<std::string>& out) {
    if (auto version = m_source->for_checkpoint(latest); version != m_rules) {
        // The first checkpoint, or a new rules version: its bucket ids differ (their prefix), so the
        // diff below removes every old bucket and adds the new ones.
        if (!version) {
            return {ErrorCode::kSessionStorageFailed, "no sync rules version is active in storage yet"};
        }
        m_rules = std::move(version);
        m_write_checkpoint_read_at = -1;  // another version's op_ids: read write checkpoints afresh
    }
    // The index as of `latest`, like the checksums and ops below: bucket set and data are one state.
    StorageLookups lookups(storage, m_rules->id, latest);
    config::rules::ResolveOptions options;
    options.max_buckets = m_limits.max_buckets;
    options.max_parameter_results = m_limits.max_parameter_results;
    auto resolution = m_rules->rules->resolve_buckets(m_rules_request, lookups, options);
    if (!lookups.failure().is_ok()) {
        return {ErrorCode::kSessionStorageFailed, lookups.failure().to_string()};
    }
    if (!resolution) {
        return resolution.status();
    }
    std::vector<std::string> ids;
    ids.reserve(resolution->buckets.size());
    for (const auto& b : resolution->buckets) {
        ids.push_back(b.id);
    }
    auto checksums = storage.checksums(ids, latest);
    if (!checksums) {
        return {ErrorCode::kSessionStorageFailed, checksums.status().to_string()};
    }
    // The client's newest write checkpoint that this checkpoint includes (its own writes are in).
    std::optional<std::uint64_t> write_checkpoint;
    if (m_request.client_id && !m_request.client_id->empty()) {
        // Read it again only when some write checkpoint was delivered since the last read: one
        // shared (cached) query per checkpoint instead of one per session.
        auto delivered = storage.write_checkpoints_delivered(latest);
        if (!delivered) {
            return {ErrorCode::kSessionStorageFailed, delivered.status().to_string()};
        }
        if (m_write_checkpoint_read_at < 0 || delivered.value() > m_write_checkpoint_read_at) {
            auto found = storage.write_checkpoint(m_token.user_id, *m_request.client_id, latest);
            if (!found) {
                return {ErrorCode::kSessionStorageFailed, found.status().to_string()};
            }
            if (*found) {
                write_checkpoint = static_cast<std::uint64_t>(**found);
            }
            m_write_checkpoint_read_at = latest;
        }
        // Write checkpoints only grow: one delivered before stays (storage drops superseded rows).
        if (m_write_checkpoint && (!write_checkpoint || *write_checkpoint < *m_write_checkpoint)) {
            write_checkpoint = m_write_checkpoint;
        }
    }
    std::map<std::string, BucketInfo> buckets;
    for (const auto& b : resolution->buckets) {
        BucketInfo info;
        info.priority = b.priority;
        info.sources = b.sources;
        if (auto c = checksums->find(b.id); c != checksums->end()) {
            info.checksum = c->second.checksum;
            info.count = c->second.count;
        }
        buckets.emplace(b.id, info);
    }

    auto describe = [&](const std::string& id, const BucketInfo& info) {
        wire::BucketChecksum c;
        c.bucket = id;
        c.checksum = info.checksum;
        c.count = info.count;
        c.priority = info.priority;
        std::vector<wire::BucketSubscription> subscriptions;
        subscriptions.reserve(info.sources.size());
        for (const auto& source : info.sources) {
            subscriptions.push_back({source.kind == config::rules::BucketSource::Kind::kDefault
                                         ? wire::BucketSubscription::Kind::kDefault
                                         : wire::BucketSubscription::Kind::kSub,
                                     static_cast<std::uint32_t>(source.index)});
        }
        c.subscriptions = std::move(subscriptions);
        return c;
    };

    m_pending.clear();
    m_next = 0;
    std::string line;
    if (!m_started) {
        // The first checkpoint: the full bucket set. Buckets the client named that it may no longer
        // read are left out, so it drops them.
        wire::Checkpoint checkpoint;
        checkpoint.last_op_id = static_cast<std::uint64_t>(latest);
        checkpoint.write_checkpoint = write_checkpoint;
        checkpoint.streams = stream_infos(*resolution, m_request, m_limits.max_subscriptions);
        for (const auto& [id, info] : buckets) {
            checkpoint.buckets.push_back(describe(id, info));
            // After update_streams: a bucket this session sent in full, unchanged since, needs no data.
            const auto sent = m_buckets.find(id);
            const bool client_has_it = sent != m_buckets.end() && sent->second.checksum == info.checksum &&
                                       sent->second.count == info.count && !m_unfinished.contains(id);
            if (info.count > 0 && m_after[id] < latest && !client_has_it) {
                m_pending.push_back({id, info.priority});
            }
        }
        m_unfinished.clear();
        std::erase_if(m_after, [&](const auto& entry) { return !buckets.contains(entry.first); });
        wire::encode_checkpoint(line, checkpoint);
        m_started = true;
        m_resolve_now = false;
    } else {
        wire::CheckpointDiff diff;
        diff.last_op_id = static_cast<std::uint64_t>(latest);
        diff.write_checkpoint = write_checkpoint;
        for (const auto& [id, info] : m_buckets) {
            if (!buckets.contains(id)) {
                diff.removed_buckets.push_back(id);
                m_after.erase(id);
            }
        }
        for (const auto& [id, info] : buckets) {
            auto old = m_buckets.find(id);
            if (old != m_buckets.end() && old->second == info) {
                continue;
            }
            diff.updated_buckets.push_back(describe(id, info));
            if (info.count > 0) {
                m_pending.push_back({id, info.priority});
            }
        }
        if (diff.removed_buckets.empty() && diff.updated_buckets.empty() && write_checkpoint == m_write_checkpoint) {
            m_buckets = std::move(buckets);
            m_checkpoint = latest;
            return Status::ok();  // nothing this client holds changed: it needs no line
        }
        wire::encode_checkpoint_diff(line, diff);
    }
    m_buckets = std::move(buckets);
    m_checkpoint = latest;
    m_write_checkpoint = write_checkpoint;
    out.push_back(std::move(line));
    std::stable_sort(m_pending.begin(), m_pending.end(),
                     [](const Pending& a, const Pending& b) { return a.priority < b.priority; });
    m_state = SessionState::kDownloading;
    if (m_pending.empty()) {
        std::string complete;
        wire::encode_checkpoint_complete(complete, static_cast<std::uint64_t>(m_checkpoint));
        out.push_back(std::move(complete));
        m_state = SessionState::kWaiting;
    }
    return Status::ok();
}

Status SyncSession::produce_data(SyncStorage& storage, std::size_t& bytes, std::vector<std::string>& out) {
    const auto& pending = m_pending[m_next];
    auto& after = m_after[pending.bucket];
    auto ops = storage.read_ops(pending.bucket, after, m_checkpoint, m_limits.ops_per_line + 1);
    if (!ops) {
        return {ErrorCode::kSessionStorageFailed, ops.status().to_string()};
    }
    auto& list = ops.value();
    std::size_t keep = 0;
    std::size_t line_bytes = 0;
    while (keep < std::min(list.size(), m_limits.ops_per_line) && (keep == 0 || line_bytes < m_limits.line_bytes)) {
        const auto& op = list[keep++];
        line_bytes += op.object_type.size() + op.object_id.size() + op.subkey.size() + (op.data ? op.data->size() : 0);
    }
    const bool has_more = keep < list.size();
    list.resize(keep);
    if (!list.empty()) {
        std::string line;
        line.reserve(list.size() * 200 + 128);
        wire::DataLineWriter writer(line, pending.bucket, static_cast<std::uint64_t>(after), has_more);
        for (const auto& op : list) {
            wire::OplogEntryView view;
            view.op_id = static_cast<std::uint64_t>(op.op_id);
            view.op = op_type(op.op);
            view.object_type = non_empty(op.object_type);
            view.object_id = non_empty(op.object_id);
            view.checksum = op.checksum;
            view.subkey = non_empty(op.subkey);
            if (op.data) {
                view.data = std::string_view(*op.data);
            }
            writer.add(view);
        }
        after = list.back().op_id;
        writer.finish(static_cast<std::uint64_t>(after));
        bytes += line.size();
        out.push_back(std::move(line));
    }
    if (!has_more) {
        finish_bucket(out, bytes);
    }
    return Status::ok();
}

void SyncSession::finish_bucket(std::vector<std::string>& out, std::size_t& bytes) {
    const int priority = m_pending[m_next].priority;
    ++m_next;
    std::string line;
    if (m_next == m_pending.size()) {
        wire::encode_checkpoint_complete(line, static_cast<std::uint64_t>(m_checkpoint));
        m_pending.clear();
        m_next = 0;
        m_state = SessionState::kWaiting;
    } else if (m_pending[m_next].priority != priority) {
        // Every bucket of this priority (and the lower numbers before it) is complete.
        wire::encode_partial_checkpoint_complete(line, static_cast<std::uint64_t>(m_checkpoint), priority);
    } else {
        return;
    }
    bytes += line.size();
    out.push_back(std::move(line));
}

std::int64_t SyncSession::on_clock(std::int64_t now, std::vector<std::string>& out) {
    if (m_state == SessionState::kEnded) {
        return m_limits.keepalive_seconds;
    }
    const auto remaining = m_token.expires_at - now;
    std::string line;
    if (remaining <= 0) {
        wire::encode_token_expires_in(line, 0);
        out.push_back(std::move(line));
        m_state = SessionState::kEnded;
        return m_limits.keepalive_seconds;
    }
    if (now >= m_next_keepalive) {
        wire::encode_token_expires_in(line, remaining);
        out.push_back(std::move(line));
        m_next_keepalive = now + m_limits.keepalive_seconds;
    }
    return std::max<std::int64_t>(1, std::min(m_next_keepalive - now, remaining));
}

Status SyncSession::replace_token(auth::VerifiedToken token, std::int64_t now, std::vector<std::string>& out) {
    if (token.user_id != m_token.user_id) {
        return {ErrorCode::kAuthInvalid, "the new token is for another user than the session's"};
    }
    m_token = std::move(token);
    std::string line;
    wire::encode_token_expires_in(line, std::max<std::int64_t>(0, m_token.expires_at - now));
    out.push_back(std::move(line));
    m_next_keepalive = now + m_limits.keepalive_seconds;
    return Status::ok();
}

}  // namespace sluice::sync
