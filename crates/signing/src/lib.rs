//! API-key secrets and signed requests: key generation, encryption of secrets at rest, the
//! canonical strings and HMAC-SHA256 of signature v1 (and the original's v0), constant-time
//! verification and replay protection. No HTTP types here.
