// TransactionAssembler: whole transactions, large ones in bounded chunks, and repeated ones dropped
// after a resume.
#include <catch2/catch.hpp>

#include "server/replication/transaction_assembler.h"

namespace pg = sluice::protocol::pgoutput;
using sluice::protocol::Lsn;
using sluice::replication::SourceTransaction;
using sluice::replication::TransactionAssembler;

namespace {

pg::Relation relation() {
    pg::Relation r;
    r.id = 42;
    r.schema = "public";
    r.name = "t";
    r.columns = {pg::Column{true, "id", 23, -1}};
    return r;
}

pg::Insert insert(int id) {
    pg::Insert i;
    i.relation_id = 42;
    i.new_tuple = {pg::Datum{pg::DatumKind::kText, std::to_string(id)}};
    return i;
}

// Feeds Begin, `rows` inserts and Commit; returns what the assembler handed on.
std::vector<SourceTransaction> feed(TransactionAssembler& a, int rows, std::uint64_t commit_lsn) {
    std::vector<SourceTransaction> out;
    auto add = [&](pg::Message m) {
        auto r = a.add(std::move(m));
        REQUIRE(r.is_ok());
        if (r.value()) {
            out.push_back(std::move(*r.value()));
        }
    };
    add(pg::Begin{Lsn(commit_lsn), 0, 7});
    for (int i = 0; i < rows; ++i) {
        add(insert(i));
    }
    add(pg::Commit{0, Lsn(commit_lsn), Lsn(commit_lsn + 8), 0});
    return out;
}

}  // namespace

TEST_CASE("a transaction larger than a chunk is handed on in chunks, the last one complete") {
    TransactionAssembler a({}, 3);
    REQUIRE(a.add(relation()).is_ok());
    auto out = feed(a, 7, 100);
    REQUIRE(out.size() == 3);
    CHECK(out[0].changes.size() == 3);
    CHECK_FALSE(out[0].complete);
    CHECK(out[1].changes.size() == 3);
    CHECK_FALSE(out[1].complete);
    CHECK(out[2].changes.size() == 1);
    CHECK(out[2].complete);
    CHECK(out[2].end_lsn == Lsn(108));
    CHECK(out[0].commit_lsn == Lsn(100));

    auto small = feed(a, 2, 200);
    REQUIRE(small.size() == 1);
    CHECK(small[0].complete);
    CHECK(small[0].changes.size() == 2);
}

TEST_CASE("after a resume, transactions already durable are dropped, chunks included") {
    TransactionAssembler a(Lsn(150), 3);
    REQUIRE(a.add(relation()).is_ok());
    CHECK(feed(a, 7, 100).empty());
    CHECK(feed(a, 7, 200).size() == 3);
}
