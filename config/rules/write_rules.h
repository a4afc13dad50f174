// write_rules: Sluice's own section of the rules file, deciding which client uploads are applied.
// Per table: which of insert / update / delete are allowed, a condition over old.<col> / new.<col>
// and request values (the same expression language as bucket_definitions), and an optional column
// allow-list. Tables and operations not listed are refused. See deploy/sync-rules.example.yaml.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "config/rules/request.h"
#include "config/rules/value.h"

namespace sluice::config::rules {

struct TableName;

enum class WriteOp { kInsert, kUpdate, kDelete };

struct WriteCheck {
    WriteOp op = WriteOp::kInsert;
    const Row* old_row = nullptr;  // update, delete: the current row
    const Row* new_row = nullptr;  // insert, update: the row as it would be after the write
    // Columns the client writes (an update's PATCH keys). Empty: an insert's new_row columns, an
    // update's columns whose value differs between old_row and new_row.
    std::span<const std::string> written_columns;
};

struct WriteDecision {
    bool allowed = false;
    std::string reason;  // why it was refused (empty when allowed)
};

class WriteRules {
public:
    struct Impl;
    WriteRules();
    ~WriteRules();
    WriteRules(WriteRules&&) noexcept;
    WriteRules& operator=(WriteRules&&) noexcept;

    [[nodiscard]] bool empty() const;
    // Tables that have an entry.
    [[nodiscard]] std::vector<TableName> tables() const;
    [[nodiscard]] WriteDecision check(const TableName& table, const WriteCheck& write, const Request& request) const;

    [[nodiscard]] Impl& impl() { return *m_impl; }
    [[nodiscard]] const Impl& impl() const { return *m_impl; }

private:
    std::unique_ptr<Impl> m_impl;
};

}  // namespace sluice::config::rules
