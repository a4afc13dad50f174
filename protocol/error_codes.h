// The error-code registry: every code that Sluice logs, prints or sends over the wire.
// Codes are stable once released; each has a one-line cause and fix. Ranges:
//   SL1xxx config   SL2xxx rules   SL3xxx replication   SL4xxx storage
//   SL5xxx sessions and protocol (SL51xx: authentication)   SL6xxx upload   SL9xxx internal
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace sluice::protocol {

enum class ErrorCode : std::uint16_t {
    kOk = 0,
    // config
    kConfigFileUnreadable = 1001,
    kConfigSyntax = 1002,
    kConfigUnknownKey = 1003,
    kConfigWrongType = 1004,
    kConfigOutOfRange = 1005,
    kConfigMissingKey = 1006,
    kConfigEnvVar = 1007,
    kConfigInvalidValue = 1008,
    // rules
    kRulesFileUnreadable = 2001,
    kRulesSyntax = 2002,
    kRulesStructure = 2003,
    kRulesSqlSyntax = 2004,
    kRulesUnsupported = 2005,
    kRulesUnknownFunction = 2006,
    kRulesWrongArguments = 2007,
    kRulesUnknownName = 2008,
    kRulesParameterNotUsed = 2009,
    kRulesParameterMismatch = 2010,
    kRulesMissingId = 2011,
    kRulesMissingAlias = 2012,
    kRulesWrongContext = 2013,
    kRulesInvalidMatch = 2014,
    kRulesClientParameter = 2015,
    kRulesWriteRule = 2016,
    kRulesRowError = 2017,
    kRulesTooManyBuckets = 2018,
    kRulesTooManyParameterResults = 2019,
    kRulesNotDeterministic = 2020,
    kRulesRequestError = 2021,
    kRulesUnknownKey = 2022,
    kRulesWriteDenied = 2023,
    // replication / source database
    kSourceUnreachable = 3001,
    kSourceAuthFailed = 3002,
    kSourceWalLevel = 3003,
    kSourceNoReplicationPrivilege = 3004,
    kSourceNoFreeSlots = 3005,
    kSourceNoFreeWalSenders = 3006,
    kSourceDatabaseMissing = 3007,
    kSourceQueryFailed = 3008,
    kSourceNoReplicaIdentity = 3009,
    kPublicationSetupFailed = 3010,
    kPublicationStorageSchema = 3011,
    kSlotSetupFailed = 3012,
    kSlotWrongPlugin = 3013,
    kReplicationStreamFailed = 3014,
    kPgoutputMalformed = 3101,
    kPgoutputUnsupported = 3102,
    kPgoutputValueMalformed = 3103,
    kPgoutputUnknownRelation = 3104,
    kPgoutputOutOfOrder = 3105,
    // storage
    kStorageUnreachable = 4001,
    kStorageAuthFailed = 4002,
    kStorageDatabaseMissing = 4003,
    kStorageMigrationFailed = 4004,
    kStorageMigrationChanged = 4005,
    kStorageMigrationUnknown = 4006,
    kStorageQueryFailed = 4007,
    // sessions and protocol
    kBadRequest = 5001,
    kMessageTooLarge = 5002,
    kRequestInvalidJson = 5003,
    kRequestInvalidField = 5004,
    kBucketIdMalformed = 5005,
    kSyncLineMalformed = 5006,
    kSyncLineUnexpected = 5007,
    kClientMessageUnknown = 5008,
    kTooManyConnections = 5009,
    kTooManyUserConnections = 5010,
    kClientTooSlow = 5011,
    kNotFound = 5012,
    kUnsupportedMediaType = 5013,
    kSessionStorageFailed = 5014,
    kUploadNotSupported = 5015,
    kTooManySubscriptions = 5016,
    // authentication (SDKs refresh their token on these)
    kAuthMissing = 5101,
    kAuthInvalid = 5102,
    kAuthExpired = 5103,
    kAuthJwksFetchFailed = 5104,
    // internal
    // upload
    kUploadTooManyOps = 6001,
    kUploadTableNotAllowed = 6002,
    kUploadDenied = 6003,
    kUploadUnknownColumn = 6004,
    kUploadRowNotFound = 6005,
    kUploadConstraint = 6006,
    kUploadInvalidData = 6007,
    kUploadPermission = 6008,
    kUploadUnavailable = 6009,
    kUploadBatchIdTaken = 6010,
    kUploadNoClientId = 6011,
    kUploadSkipped = 6012,
    kUploadDatabaseRefused = 6013,
    kUploadSourceSetup = 6014,
    kInternal = 9001,
};

struct ErrorInfo {
    ErrorCode code;
    std::string_view id;           // stable text form, e.g. "SL3003"
    std::string_view cause;        // one line: what went wrong
    std::string_view fix;          // one line: what to do about it
};

// The entry for a code; kInternal's entry for a value that is not registered.
[[nodiscard]] const ErrorInfo& error_info(ErrorCode code) noexcept;
[[nodiscard]] std::string_view error_id(ErrorCode code) noexcept;
[[nodiscard]] std::span<const ErrorInfo> all_errors() noexcept;

}  // namespace sluice::protocol
