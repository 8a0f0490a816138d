//! The identity service: organisations, users, roles, tokens, signing keys, provider lists and the audit log.
