//! Admin API tests (issue 2).
