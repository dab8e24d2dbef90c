// The one table that maps what WeChat (or the network) answered to an error class.
// Nothing else in fanpull decides a class: the client, the token source and the worker ask here.
// Pure functions; thread-safe.
#pragma once

#include <string>

#include "core/error.h"

namespace fanpull {

// The class of a non-zero WeChat errcode (docs/CONTRACTS.md, "Error classes"): 40001 -> token_invalid,
// 45009 -> quota_exhausted, any errcode not in the table -> unknown.
ErrorClass classifyErrcode(long errcode);

// An Error for a WeChat errcode body: the class from classifyErrcode(), errcode and errmsg kept.
Error errcodeError(long errcode, std::string errmsg);

// An Error for an HTTP answer that is not a 200 with a JSON body: 5xx, 408 and 429 are retryable;
// other statuses are unknown (retried like retryable, then failed with the status kept).
Error httpStatusError(int status, std::string cause);

// How a transport failed. Every kind is retryable: the request may succeed on another attempt.
enum class TransportFailure {
  kConnect,    // could not connect (refused, unreachable, DNS)
  kTimeout,    // connect, send or receive timeout
  kReset,      // connection reset or closed before a full answer
  kTls,        // TLS handshake or certificate verification failed
  kTooLarge,   // the answer exceeded the response size cap
  kProtocol,   // not HTTP, or malformed HTTP
};
Error transportError(TransportFailure kind, std::string cause);

// An Error for a 200 answer whose body is not a valid user/get answer (HTML from a gateway,
// truncated or malformed JSON): retryable.
Error malformedAnswerError(std::string cause);

}  // namespace fanpull
