//! End-to-end tests that start the suite and talk to it through the generated clients.
