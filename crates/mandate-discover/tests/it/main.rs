//! Integration tests of mandate-discover: finders over the corpus in
//! `tests/fixtures/discovery`, masking, precision and recall, SARIF schema.
