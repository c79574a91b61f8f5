//! Records of governance: registered tools per resource, drift baselines,
//! drift findings and the detector's position in the audit log.
