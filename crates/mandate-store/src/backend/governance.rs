//! Governance tables: tools per resource, drift baselines and findings, the
//! detector cursor. Every change made by an admin is written with its audit
//! event in one transaction.
