// Corpus helpers for the pgoutput golden tests (see pgoutput_corpus.h).
#include "tests/protocol/pgoutput_corpus.h"

#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include "protocol/pgoutput/decoder.h"
#include "protocol/pgoutput/describe.h"
#include "protocol/pgoutput/text_value.h"

namespace sluice::test {

namespace pg = protocol::pgoutput;

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw std::runtime_error("cannot read " + path);
    }
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::vector<std::string> read_frames(const std::string& case_name) {
    std::istringstream in(read_text(kPgoutputDataDir + case_name + ".frames"));
    std::vector<std::string> frames;
    for (std::string line; std::getline(in, line);) {
        if (line.empty()) {
            continue;
        }
        auto bytes = pg::from_hex(line);
        if (!bytes) {
            throw std::runtime_error("bad hex in " + case_name + ".frames");
        }
        frames.push_back(std::move(*bytes));
    }
    return frames;
}

pg::TypeResolver read_types(const std::string& case_name) {
    std::istringstream in(read_text(kPgoutputDataDir + case_name + ".types"));
    std::map<pg::Oid, pg::TypeDescription> types;
    pg::Oid oid = 0;
    std::string kind;
    pg::Oid base = 0;
    while (in >> oid >> kind >> base) {
        using Kind = pg::TypeDescription::Kind;
        types[oid] = {kind == "domain" ? Kind::kDomain : kind == "enum" ? Kind::kEnum : Kind::kArray, base};
    }
    return [types](pg::Oid o) -> std::optional<pg::TypeDescription> {
        const auto it = types.find(o);
        if (it == types.end()) {
            return std::nullopt;
        }
        return it->second;
    };
}

namespace {

std::string render_tuple(const pg::Relation* rel, const pg::Tuple& tuple, const pg::TypeResolver& types) {
    if (rel == nullptr) {
        return "<unknown relation>";
    }
    if (rel->columns.size() != tuple.size()) {
        return "<column count mismatch>";
    }
    std::string out;
    for (std::size_t i = 0; i < tuple.size(); ++i) {
        out += (i == 0 ? "" : " ") + rel->columns[i].name + "=";
        const auto& datum = tuple[i];
        if (datum.kind == pg::DatumKind::kUnchangedToast) {
            out += "<unchanged>";
            continue;
        }
        auto value = pg::decode_datum(rel->columns[i].type_oid, datum, types);
        if (!value) {
            out += "<error: " + value.status().to_string() + ">";
        } else if (value->type == pg::ValueType::kBlob) {
            out += "x'" + pg::to_hex(value->bytes) + "'";
        } else {
            auto json = pg::to_json(*value);
            if (json.size() > 120) {
                json = json.substr(0, 100) + "…(+" + std::to_string(json.size() - 100) + " bytes)";
            }
            out += json;
        }
    }
    return out;
}

}  // namespace

std::string render_frames(const std::vector<std::string>& frames, const pg::TypeResolver& types) {
    std::map<pg::Oid, pg::Relation> relations;
    pg::Decoder decoder;
    std::string out;
    for (const auto& frame : frames) {
        auto copy = pg::decode_copy_data(frame);
        if (!copy) {
            out += "error: " + copy.status().to_string() + "\n";
            continue;
        }
        out += pg::describe(*copy);
        const auto* w = std::get_if<pg::XLogData>(&copy.value());
        if (w == nullptr) {
            out += "\n";
            continue;
        }
        auto message = decoder.decode(w->payload);
        if (!message) {
            out += " | error: " + message.status().to_string() + "\n";
            continue;
        }
        out += " | " + pg::describe(*message) + "\n";
        auto find = [&](pg::Oid id) -> const pg::Relation* {
            const auto it = relations.find(id);
            return it == relations.end() ? nullptr : &it->second;
        };
        if (const auto* r = std::get_if<pg::Relation>(&message.value())) {
            relations[r->id] = *r;
        } else if (const auto* i = std::get_if<pg::Insert>(&message.value())) {
            out += "    new: " + render_tuple(find(i->relation_id), i->new_tuple, types) + "\n";
        } else if (const auto* u = std::get_if<pg::Update>(&message.value())) {
            if (u->old_kind != pg::OldTupleKind::kNone) {
                out += "    old: " + render_tuple(find(u->relation_id), u->old_tuple, types) + "\n";
            }
            out += "    new: " + render_tuple(find(u->relation_id), u->new_tuple, types) + "\n";
        } else if (const auto* d = std::get_if<pg::Delete>(&message.value())) {
            out += "    old: " + render_tuple(find(d->relation_id), d->old_tuple, types) + "\n";
        }
    }
    return out;
}

}  // namespace sluice::test
