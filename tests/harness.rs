//! Test harness: finds and runs the workspace binaries.
