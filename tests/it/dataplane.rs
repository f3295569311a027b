//! Data plane tests (issue 3).
