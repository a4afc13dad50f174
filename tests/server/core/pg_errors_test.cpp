// Classification of libpq connection messages (as libpq 15 prints them) and password redaction.
#include <catch2/catch.hpp>

#include "server/core/pg_errors.h"

using sluice::core::classify_connect_failure;
using sluice::core::ConnectFailure;

TEST_CASE("libpq connection failures are classified") {
    CHECK(classify_connect_failure("connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n\tIs the "
                                   "server running on that host and accepting TCP/IP connections?") ==
          ConnectFailure::kUnreachable);
    CHECK(classify_connect_failure("could not translate host name \"nohost\" to address: Name or service not known") ==
          ConnectFailure::kUnreachable);
    CHECK(classify_connect_failure("connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  password "
                                   "authentication failed for user \"x\"") == ConnectFailure::kAuth);
    CHECK(classify_connect_failure("FATAL:  role \"nobody\" does not exist") == ConnectFailure::kAuth);
    CHECK(classify_connect_failure("FATAL:  no pg_hba.conf entry for replication connection from host \"10.0.0.1\"") ==
          ConnectFailure::kAuth);
    CHECK(classify_connect_failure("FATAL:  database \"nope\" does not exist") == ConnectFailure::kDatabaseMissing);
    CHECK(classify_connect_failure("FATAL:  must be superuser or replication role to start walsender") ==
          ConnectFailure::kNoReplication);
    CHECK(classify_connect_failure("FATAL:  number of requested standby connections exceeds max_wal_senders "
                                   "(currently 10)") == ConnectFailure::kNoWalSenders);
    CHECK(classify_connect_failure("something new") == ConnectFailure::kOther);
}

TEST_CASE("one_line joins libpq's multi-line messages") {
    CHECK(sluice::core::one_line("a failed: X\n\tIs it?\n") == "a failed: X Is it?");
}

TEST_CASE("passwords never reach logs") {
    using sluice::core::redact_conninfo;
    CHECK(redact_conninfo("postgresql://app:s3cr3t@db:5432/app") == "postgresql://app:***@db:5432/app");
    CHECK(redact_conninfo("postgres://app@db/app") == "postgres://app@db/app");
    CHECK(redact_conninfo("host=db password=s3cr3t user=app") == "host=db password=*** user=app");
    CHECK(redact_conninfo("host=db password='a b\\'c' user=app") == "host=db password=*** user=app");
    CHECK(redact_conninfo("postgresql://db/app?user=u&password=s3cr3t&sslmode=require") ==
          "postgresql://db/app?user=u&password=***&sslmode=require");
}
