//! Registered tools: the tool names each resource offers, so access review
//! can evaluate `mcp:tools/call` on `Tool::"<resource>/<tool>"` for each.

use mandate_core::{AuditDraft, Outcome, ValidationError};
use mandate_policy::ToolEntity;

use crate::{Actor, Engine, Error, Result};

/// Most tools one resource may list.
pub const MAX_TOOLS: usize = 256;

fn check_tool(t: &str) -> Result<()> {
    let ok = !t.is_empty()
        && t.len() <= 128
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(ValidationError::new(
            "tools",
            format!("`{t}` is not a tool name (1 to 128 of A-Z a-z 0-9 _ - . :)"),
        )))
    }
}

impl Engine {
    /// Replaces the tools `resource` offers (sorted, duplicates dropped).
    pub async fn set_resource_tools(
        &self,
        actor: &Actor,
        resource: &str,
        tools: &[String],
    ) -> Result<Vec<String>> {
        let mut list: Vec<String> = tools.iter().map(|t| t.trim().to_owned()).collect();
        list.sort();
        list.dedup();
        if list.len() > MAX_TOOLS {
            return Err(Error::Invalid(ValidationError::new(
                "tools",
                format!("at most {MAX_TOOLS} tools per resource"),
            )));
        }
        for t in &list {
            check_tool(t)?;
        }
        let draft = AuditDraft::new(mandate_core::EventKind::ResourceToolsSet, Outcome::Success)
            .actor(actor.token_id.clone())
            .target(format!("resource:{resource}"))
            .detail(serde_json::json!({ "tools": list }));
        self.store
            .set_resource_tools(resource, &list, draft, self.now())
            .await?
            .ok_or_else(|| Error::NotFound {
                kind: "resource",
                id: resource.to_owned(),
            })?;
        // Registered tools are policy entities (children of their resource).
        if let Err(e) = self.reload_policy().await {
            tracing::warn!(error = %e, "cannot rebuild policy entities after a tools change");
        }
        Ok(list)
    }

    /// The tools `resource` offers.
    pub async fn resource_tools(&self, resource: &str) -> Result<Vec<String>> {
        self.resource(resource).await?;
        Ok((self.store.list_resource_tools().await?)
            .into_iter()
            .filter(|(r, _)| r == resource)
            .map(|(_, t)| t)
            .collect())
    }
}

/// Policy entities of the registered tools: `Tool::"<resource>/<tool>"`
/// with its resource as parent.
pub(crate) fn tool_entities(tools: Vec<(String, String)>) -> Vec<ToolEntity> {
    tools
        .into_iter()
        .map(|(r, t)| ToolEntity {
            id: format!("{r}/{t}"),
            resource: Some(r),
            sensitivity: None,
        })
        .collect()
}
