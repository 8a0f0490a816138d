//! Test support: databases per test, a running suite and signed-in clients.
