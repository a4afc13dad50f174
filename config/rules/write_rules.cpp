// write_rules: compiling the section (YAML + conditions) and checking one upload against it.
#include "config/rules/write_rules.h"

#include <algorithm>
#include <optional>

#include <fmt/format.h>

#include "config/rules/detail/expr_compiler.h"
#include "config/rules/detail/yaml_context.h"
#include "config/rules/parser.h"
#include "config/rules/rule_set.h"

namespace sluice::config::rules {

struct WriteRule {
    bool allowed = false;
    bool has_condition = false;
    detail::CExpr condition;
    std::string condition_sql;
    std::optional<std::vector<std::string>> columns;
};

struct WriteTable {
    TableName table;
    WriteRule ops[3];  // insert, update, delete
};

struct WriteRules::Impl {
    std::vector<WriteTable> tables;
};

WriteRules::WriteRules() : m_impl(std::make_unique<Impl>()) {}
WriteRules::~WriteRules() = default;
WriteRules::WriteRules(WriteRules&&) noexcept = default;
WriteRules& WriteRules::operator=(WriteRules&&) noexcept = default;

bool WriteRules::empty() const { return m_impl->tables.empty(); }

std::vector<TableName> WriteRules::tables() const {
    std::vector<TableName> out;
    for (const auto& t : m_impl->tables) {
        out.push_back(t.table);
    }
    return out;
}

namespace {

using protocol::ErrorCode;

constexpr const char* kOpNames[] = {"insert", "update", "delete"};

std::optional<std::vector<std::string>> columns_list(detail::CompileContext& ctx, const YAML::Node& node,
                                                     const std::string& path) {
    if (!node.IsSequence()) {
        ctx.report(node.Mark(), path, ErrorCode::kRulesWriteRule,
                   "expected a list of column names, e.g. [id, description, completed]");
        return std::nullopt;
    }
    std::vector<std::string> out;
    for (const auto& c : node) {
        if (!c.IsScalar() || c.Scalar().empty()) {
            ctx.report(c.Mark(), path, ErrorCode::kRulesWriteRule, "expected a column name");
            continue;
        }
        out.push_back(c.Scalar());
    }
    return out;
}

void compile_condition(detail::CompileContext& ctx, const YAML::Node& node, const std::string& path, int op,
                       WriteRule& rule) {
    const std::string sql = node.Scalar();
    auto parsed = parse_expression(sql);
    std::vector<SqlError> errors = std::move(parsed.errors);
    if (parsed.expression) {
        detail::NameScope scope;
        scope.kind = detail::NameScope::Kind::kWrite;
        scope.allow_new = op != 2;
        scope.allow_old = op != 0;
        scope.write_op = kOpNames[op];
        detail::ExprCompiler compiler(sql, scope, errors);
        unsigned uses = 0;
        rule.condition = compiler.compile(*parsed.expression, uses);
        rule.has_condition = true;
        rule.condition_sql = sql;
        if (const Span* client = compiler.first_client_use(); client != nullptr && (uses & detail::kUsesAuth) == 0) {
            ctx.report_sql(node, sql, path,
                           {{*client, ErrorCode::kRulesClientParameter,
                             fmt::format("{} is supplied by the client and decides whether this write is allowed: "
                                         "any user can set it; expected request.user_id() or request.jwt() claims",
                                         detail::quote(sql, *client))}},
                           Severity::kWarning);
        }
    }
    ctx.report_sql(node, sql, path, errors);
}

void compile_op(detail::CompileContext& ctx, const YAML::Node& node, const std::string& path, int op,
                WriteRule& rule) {
    rule.allowed = true;
    if (node.IsScalar()) {
        compile_condition(ctx, node, path, op, rule);
        return;
    }
    if (!node.IsMap()) {
        ctx.report(node.Mark(), path, ErrorCode::kRulesWriteRule,
                   "expected a condition (e.g. new.owner_id = request.user_id(), or true) or a mapping with "
                   "condition and columns");
        return;
    }
    for (const auto& entry : node) {
        const std::string k = entry.first.Scalar();
        if (k == "condition") {
            if (!entry.second.IsScalar()) {
                ctx.report(entry.second.Mark(), path + ".condition", ErrorCode::kRulesWriteRule,
                           "expected a condition as text");
            } else {
                compile_condition(ctx, entry.second, path + ".condition", op, rule);
            }
        } else if (k == "columns") {
            rule.columns = columns_list(ctx, entry.second, path + ".columns");
        } else {
            ctx.report(entry.first.Mark(), path + "." + k, ErrorCode::kRulesUnknownKey,
                       fmt::format("unknown key '{}' in a write rule; expected condition or columns{}", k,
                                   detail::CompileContext::suggestion(k, {"condition", "columns"})));
        }
    }
}

}  // namespace

void compile_write_rules(detail::CompileContext& ctx, const YAML::Node& node, WriteRules& out) {
    if (node.IsNull()) {
        return;
    }
    if (!node.IsMap()) {
        ctx.report(node.Mark(), "write_rules", ErrorCode::kRulesWriteRule,
                   "expected a mapping of table names to rules (insert, update, delete, columns)");
        return;
    }
    for (const auto& entry : node) {
        const std::string name = entry.first.Scalar();
        const std::string path = "write_rules." + name;
        WriteTable table;
        const auto dot = name.find('.');
        table.table = dot == std::string::npos ? TableName{"public", name}
                                               : TableName{name.substr(0, dot), name.substr(dot + 1)};
        if (table.table.name.empty() || table.table.schema.empty() ||
            table.table.name.find('.') != std::string::npos) {
            ctx.report(entry.first.Mark(), path, ErrorCode::kRulesWriteRule,
                       fmt::format("'{}' is not a table name; expected <table> or <schema>.<table>", name));
            continue;
        }
        const YAML::Node& body = entry.second;
        if (!body.IsMap()) {
            ctx.report(body.Mark(), path, ErrorCode::kRulesWriteRule,
                       "expected a mapping with insert, update, delete and optional columns");
            continue;
        }
        std::optional<std::vector<std::string>> table_columns;
        for (const auto& op_entry : body) {
            const std::string k = op_entry.first.Scalar();
            const auto* it = std::find(std::begin(kOpNames), std::end(kOpNames), k);
            if (it != std::end(kOpNames)) {
                const int op = static_cast<int>(it - std::begin(kOpNames));
                compile_op(ctx, op_entry.second, path + "." + k, op, table.ops[op]);
            } else if (k == "columns") {
                table_columns = columns_list(ctx, op_entry.second, path + ".columns");
            } else {
                ctx.report(op_entry.first.Mark(), path + "." + k, ErrorCode::kRulesUnknownKey,
                           fmt::format("unknown key '{}' in write_rules.{}; expected insert, update, delete or "
                                       "columns{}",
                                       k, name,
                                       detail::CompileContext::suggestion(k, {"insert", "update", "delete",
                                                                              "columns"})));
            }
        }
        for (auto& rule : table.ops) {
            if (rule.allowed && !rule.columns && table_columns) {
                rule.columns = table_columns;
            }
        }
        out.impl().tables.push_back(std::move(table));
    }
}

WriteDecision WriteRules::check(const TableName& table, const WriteCheck& write, const Request& request) const {
    const auto it = std::find_if(m_impl->tables.begin(), m_impl->tables.end(),
                                 [&](const WriteTable& t) { return t.table == table; });
    if (it == m_impl->tables.end()) {
        return {false, fmt::format("table {} has no write_rules entry", table.to_string())};
    }
    const int op = static_cast<int>(write.op);
    const WriteRule& rule = it->ops[op];
    if (!rule.allowed) {
        return {false, fmt::format("{} on {} is not allowed by write_rules", kOpNames[op], table.to_string())};
    }
    if (rule.columns && write.op != WriteOp::kDelete) {
        std::vector<std::string> written(write.written_columns.begin(), write.written_columns.end());
        if (written.empty() && write.new_row != nullptr) {
            for (const auto& [name, value] : *write.new_row) {
                if (write.op == WriteOp::kInsert) {
                    written.push_back(name);
                    continue;
                }
                const Value* old = write.old_row != nullptr ? write.old_row->find(name) : nullptr;
                if (old == nullptr || !(*old == value)) {
                    written.push_back(name);
                }
            }
        }
        for (const auto& c : written) {
            if (std::find(rule.columns->begin(), rule.columns->end(), c) == rule.columns->end()) {
                return {false, fmt::format("column '{}' may not be written by {} on {}; allowed: {}", c,
                                           kOpNames[op], table.to_string(), fmt::join(*rule.columns, ", "))};
            }
        }
    }
    if (rule.has_condition) {
        detail::EvalContext ctx;
        ctx.old_row = write.old_row;
        ctx.new_row = write.new_row;
        ctx.request = &request;
        const bool ok = detail::eval_condition(rule.condition, ctx);
        if (!ctx.error.empty()) {
            return {false, fmt::format("the {} condition of {} failed: {}", kOpNames[op], table.to_string(),
                                       ctx.error)};
        }
        if (!ok) {
            return {false, fmt::format("the {} condition of {} is not met: {}", kOpNames[op], table.to_string(),
                                       rule.condition_sql)};
        }
    }
    return {true, ""};
}

}  // namespace sluice::config::rules
