//! Binding rules: which agent a verified attestation is.
//!
//! A rule belongs to one provider and names one agent; it holds one or more
//! matches on flattened claims, each `CLAIM=VALUE` (exact) or `CLAIM~GLOB`
//! (`*` any run of characters, `?` one character). A rule applies when all
//! its matches hold. Among the rules that apply the most specific wins: most
//! exact matches, then most globs. Two rules of one provider with the same
//! specificity that could both apply to one claim set are a **tie**, refused
//! when the second is created ([`conflicts`]), so at most one rule wins.
//! Overlap is judged conservatively: two rules may overlap unless some claim
//! they both constrain has incompatible constraints (two different exact
//! values, or an exact value the other's glob does not match).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Most matches in one rule.
pub const MAX_MATCHES: usize = 16;

/// How a claim is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MatchOp {
    /// `CLAIM=VALUE`: equal.
    Exact,
    /// `CLAIM~GLOB`: glob match.
    Glob,
}

/// One condition of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimMatch {
    /// Flattened claim name, e.g. `kubernetes.io.namespace`.
    pub claim: String,
    /// Exact or glob.
    pub op: MatchOp,
    /// The value or pattern.
    pub value: String,
}

impl ClaimMatch {
    /// Parses `CLAIM=VALUE` or `CLAIM~GLOB`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (i, op) = match (s.find('='), s.find('~')) {
            (Some(e), Some(g)) if g < e => (g, MatchOp::Glob),
            (Some(e), _) => (e, MatchOp::Exact),
            (None, Some(g)) => (g, MatchOp::Glob),
            (None, None) => return Err(format!("`{s}` is not `CLAIM=VALUE` or `CLAIM~GLOB`")),
        };
        let m = Self {
            claim: s[..i].to_owned(),
            op,
            value: s[i + 1..].to_owned(),
        };
        m.check()?;
        Ok(m)
    }

    /// Checks the claim name and value.
    pub fn check(&self) -> Result<(), String> {
        let name_ok = !self.claim.is_empty()
            && self.claim.len() <= 256
            && self
                .claim
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'=' && b != b'~');
        if !name_ok {
            return Err(format!("claim name `{}` is not valid", self.claim));
        }
        if self.value.len() > 1024 || self.value.chars().any(char::is_control) {
            return Err(format!(
                "value of `{}` is too long or has control characters",
                self.claim
            ));
        }
        if self.op == MatchOp::Glob && self.value.is_empty() {
            return Err(format!("glob for `{}` is empty", self.claim));
        }
        Ok(())
    }

    fn holds(&self, claims: &BTreeMap<String, String>) -> bool {
        claims.get(&self.claim).is_some_and(|v| match self.op {
            MatchOp::Exact => *v == self.value,
            MatchOp::Glob => glob(&self.value, v),
        })
    }
}

impl std::fmt::Display for ClaimMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match self.op {
            MatchOp::Exact => '=',
            MatchOp::Glob => '~',
        };
        write!(f, "{}{op}{}", self.claim, self.value)
    }
}

/// Specificity: (exact matches, glob matches), compared lexicographically.
pub fn specificity(matches: &[ClaimMatch]) -> (usize, usize) {
    let exact = matches.iter().filter(|m| m.op == MatchOp::Exact).count();
    (exact, matches.len() - exact)
}

/// Whether all `matches` hold on `claims`.
pub fn applies(matches: &[ClaimMatch], claims: &BTreeMap<String, String>) -> bool {
    !matches.is_empty() && matches.iter().all(|m| m.holds(claims))
}

/// Whether two rules could both apply to one claim set (conservative).
pub fn may_overlap(a: &[ClaimMatch], b: &[ClaimMatch]) -> bool {
    for x in a {
        for y in b.iter().filter(|y| y.claim == x.claim) {
            let compatible = match (x.op, y.op) {
                (MatchOp::Exact, MatchOp::Exact) => x.value == y.value,
                (MatchOp::Exact, MatchOp::Glob) => glob(&y.value, &x.value),
                (MatchOp::Glob, MatchOp::Exact) => glob(&x.value, &y.value),
                (MatchOp::Glob, MatchOp::Glob) => true,
            };
            if !compatible {
                return false;
            }
        }
    }
    true
}

/// Whether a new rule `new` ties with an existing rule `old` of the same provider.
pub fn conflicts(new: &[ClaimMatch], old: &[ClaimMatch]) -> bool {
    specificity(new) == specificity(old) && may_overlap(new, old)
}

/// The outcome of choosing among rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice<'a, T> {
    /// Exactly one most specific rule applies.
    One(&'a T),
    /// No rule applies.
    None,
    /// Several rules of the top specificity apply (a configuration error
    /// that creation-time checks should have prevented).
    Tie(Vec<&'a T>),
}

/// Picks the most specific rule of `rules` (given with their matches) that
/// applies to `claims`.
pub fn choose<'a, T>(
    rules: &'a [T],
    matches_of: impl Fn(&T) -> &[ClaimMatch],
    claims: &BTreeMap<String, String>,
) -> Choice<'a, T> {
    let applying: Vec<&T> = rules
        .iter()
        .filter(|r| applies(matches_of(r), claims))
        .collect();
    let Some(best) = applying.iter().map(|r| specificity(matches_of(r))).max() else {
        return Choice::None;
    };
    let top: Vec<&T> = applying
        .into_iter()
        .filter(|r| specificity(matches_of(r)) == best)
        .collect();
    match top.as_slice() {
        [one] => Choice::One(one),
        _ => Choice::Tie(top),
    }
}

/// Glob match with `*` (any run, also empty) and `?` (one character).
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    fn m(s: &str) -> ClaimMatch {
        ClaimMatch::parse(s).unwrap()
    }

    fn claims(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn globs() {
        assert!(glob("*", ""));
        assert!(glob("bill*", "billing"));
        assert!(glob("b?ll*g", "billing"));
        assert!(glob("*-bot", "invoice-bot"));
        assert!(!glob("*-bot", "invoice-bots"));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "axxbyy"));
    }

    #[test]
    fn parse_and_display() {
        assert_eq!(m("ns=billing").to_string(), "ns=billing");
        assert_eq!(m("ref~refs/heads/*").op, MatchOp::Glob);
        // The first operator splits: a value may contain the other one.
        assert_eq!(m("a=b~c").value, "b~c");
        assert_eq!(m("a~b=c").value, "b=c");
        assert!(ClaimMatch::parse("novalue").is_err());
        assert!(ClaimMatch::parse("=x").is_err());
        assert!(ClaimMatch::parse("a~").is_err());
    }

    #[test]
    fn most_specific_wins_and_ties_are_found() {
        let rules = vec![
            ("ns", vec![m("ns=billing")]),
            ("ns-sa", vec![m("ns=billing"), m("sa=bot")]),
            ("glob", vec![m("ns=billing"), m("sa~b*")]),
        ];
        let c = claims(&[("ns", "billing"), ("sa", "bot")]);
        assert_eq!(choose(&rules, |r| &r.1, &c), Choice::One(&rules[1]));
        let c = claims(&[("ns", "billing"), ("sa", "bee")]);
        assert_eq!(choose(&rules, |r| &r.1, &c), Choice::One(&rules[2]));
        let c = claims(&[("ns", "ops")]);
        assert_eq!(choose(&rules, |r| &r.1, &c), Choice::None);

        assert!(conflicts(&[m("ns=billing")], &[m("sa=bot")]));
        assert!(!conflicts(&[m("ns=billing")], &[m("ns=ops")]));
        assert!(!conflicts(
            &[m("ns=billing"), m("sa=x")],
            &[m("ns=billing")]
        ));
        assert!(!conflicts(&[m("ns~bill*")], &[m("ns=ops")]));
        assert!(conflicts(&[m("ns~bill*")], &[m("ns~*ing")]));
    }
}
