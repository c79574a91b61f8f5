//! Hard-coded credentials: provider formats (with checksums where the
//! provider defines one), PEM private keys, and high-entropy assignments to
//! secret-looking names.

use std::sync::LazyLock;

use regex::Regex;

use crate::finding::{Credential, Finding, FindingKind, fingerprint, mask};

/// Minimum Shannon entropy (bits per character) of a generic secret value.
pub(crate) const ENTROPY_THRESHOLD: f64 = 3.5;
/// Minimum length of a generic secret value.
pub(crate) const GENERIC_MIN_LEN: usize = 16;
/// How many lines around an AWS access key id are searched for its secret.
const AWS_SECRET_WINDOW: usize = 5;

/// Compiles a pattern written in this crate.
#[expect(
    clippy::expect_used,
    reason = "patterns are literals; every one is compiled by the unit tests"
)]
pub(crate) fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("built-in pattern compiles")
}

/// What a format check says about a candidate.
struct Valid {
    checksum_verified: bool,
    detail: Option<String>,
}

struct ProviderRule {
    provider: &'static str,
    description: &'static str,
    re: Regex,
    check: fn(&str) -> Option<Valid>,
}

fn plain(_: &str) -> Option<Valid> {
    Some(Valid {
        checksum_verified: false,
        detail: None,
    })
}

static PROVIDER_RULES: LazyLock<Vec<ProviderRule>> = LazyLock::new(|| {
    let rule = |provider, description, pattern: &str, check| ProviderRule {
        provider,
        description,
        re: re(pattern),
        check,
    };
    vec![
        rule(
            "github",
            "GitHub token",
            r"\bgh[pousr]_[A-Za-z0-9]{36,}",
            |v| {
                github_token_is_valid(v).then(|| Valid {
                    checksum_verified: true,
                    detail: Some(github_kind(v).to_owned()),
                })
            },
        ),
        rule(
            "github",
            "GitHub fine-grained personal access token",
            r"\bgithub_pat_[A-Za-z0-9_]{82,}",
            |v| {
                let rest = v.strip_prefix("github_pat_")?;
                let (a, b) = rest.split_once('_')?;
                (a.len() == 22 && b.len() == 59 && !b.contains('_')).then_some(Valid {
                    checksum_verified: false,
                    detail: None,
                })
            },
        ),
        rule(
            "openai",
            "OpenAI API key",
            r"\bsk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,}",
            |v| {
                let body = v.splitn(3, '-').nth(2)?;
                (body.len() >= 40).then_some(Valid {
                    checksum_verified: false,
                    detail: v
                        .contains("T3BlbkFJ")
                        .then(|| "contains T3BlbkFJ".to_owned()),
                })
            },
        ),
        rule(
            "openai",
            "OpenAI API key (legacy)",
            r"\bsk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20,}",
            |v| {
                (v.len() == 51).then_some(Valid {
                    checksum_verified: false,
                    detail: Some("contains T3BlbkFJ".to_owned()),
                })
            },
        ),
        rule(
            "anthropic",
            "Anthropic API key",
            r"\bsk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_-]{20,}",
            |v| {
                let body = v.splitn(4, '-').nth(3)?;
                (body.len() >= 80 && body.ends_with("AA")).then_some(Valid {
                    checksum_verified: false,
                    detail: None,
                })
            },
        ),
        rule(
            "aws",
            "AWS access key id",
            r"\b(?:AKIA|ASIA)[A-Z2-7]{16,}",
            |v| {
                if v.len() != 20 {
                    return None;
                }
                let account = aws_account_id(v)?;
                Some(Valid {
                    checksum_verified: false,
                    detail: Some(format!("account {account}")),
                })
            },
        ),
        rule(
            "slack",
            "Slack token",
            r"\bxox[bp]-[0-9]{8,14}-[0-9]{8,14}(?:-[0-9]{8,14})?-[A-Za-z0-9]{24,34}",
            plain,
        ),
        rule(
            "slack",
            "Slack app-level token",
            r"\bxapp-\d-[A-Z0-9]{8,14}-\d{8,14}-[a-f0-9]{32,64}",
            plain,
        ),
        rule(
            "slack",
            "Slack incoming webhook URL",
            r"https://hooks\.slack\.com/services/T[A-Z0-9]{8,12}/B[A-Z0-9]{8,12}/[A-Za-z0-9]{24}",
            plain,
        ),
        rule(
            "stripe",
            "Stripe live secret key",
            r"\b(?:sk|rk)_live_[A-Za-z0-9]{24,99}",
            plain,
        ),
        rule(
            "google",
            "Google API key",
            r"\bAIza[0-9A-Za-z_-]{35,}",
            |v| {
                (v.len() == 39).then_some(Valid {
                    checksum_verified: false,
                    detail: None,
                })
            },
        ),
    ]
});

static PEM_BEGIN: LazyLock<Regex> =
    LazyLock::new(|| re(r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----"));
static AWS_SECRET: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?:^|[^A-Za-z0-9/+])([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"));
static SECRET_WORD: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)secret"));
static GENERIC: LazyLock<Regex> = LazyLock::new(|| {
    re(concat!(
        r#"(?i)([A-Za-z0-9_.-]*(?:api[_-]?key|secret|token|passw(?:or)?d|access[_-]?key|auth[_-]?key|credential)s?[A-Za-z0-9_]*)"#,
        r#"["']?\s*(?::=|=>|=|:)\s*(?:(?-i:[rbuf]{0,2})(["'`]))?([A-Za-z0-9+/=_\-.~]{16,})"#,
    ))
});
static NOT_SECRET_NAME: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)(?:url|uri|endpoint|path|file|dir|name|type|header|prefix|env|var|length|len|ttl|expiry|expires|count|limit|id)$",
    )
});
static DOTTED_IDENT: LazyLock<Regex> =
    LazyLock::new(|| re(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+$"));
static ENV_NAME: LazyLock<Regex> = LazyLock::new(|| re(r"^[A-Z][A-Z0-9_]+$"));
static WORDY: LazyLock<Regex> = LazyLock::new(|| re(r"^[a-z_.-]+$"));

/// Finds every credential in one file's text.
pub(crate) fn find(display: &str, text: &str) -> Vec<Finding> {
    let lines = LineIndex::new(text);
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut out = Vec::new();
    let mut aws_key_lines = Vec::new();
    for rule in PROVIDER_RULES.iter() {
        for m in rule.re.find_iter(text) {
            if text[m.end()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
            {
                continue;
            }
            let Some(valid) = (rule.check)(m.as_str()) else {
                continue;
            };
            spans.push((m.start(), m.end()));
            let line = lines.line_of(m.start());
            if rule.provider == "aws" {
                aws_key_lines.push((line, out.len()));
            }
            out.push(credential(
                display,
                line,
                rule.provider,
                rule.description,
                m.as_str(),
                valid.checksum_verified,
                valid.detail,
            ));
        }
    }
    aws_secrets(display, text, &lines, &aws_key_lines, &mut spans, &mut out);
    pem_keys(display, text, &lines, &mut spans, &mut out);
    generic(display, text, &lines, &spans, &mut out);
    out
}

fn credential(
    display: &str,
    line: usize,
    provider: &str,
    description: &str,
    value: &str,
    checksum_verified: bool,
    detail: Option<String>,
) -> Finding {
    Finding {
        rule_id: format!("mandate/hardcoded-credential/{provider}"),
        path: display.to_owned(),
        line,
        kind: FindingKind::HardcodedCredential(Credential {
            provider: provider.to_owned(),
            description: description.to_owned(),
            masked: mask(value),
            fingerprint: fingerprint(value),
            checksum_verified,
            detail,
        }),
        registration: None,
    }
}

/// AWS secret access keys (40 base64 characters on a line that says
/// "secret") within a few lines of an access key id.
fn aws_secrets(
    display: &str,
    text: &str,
    lines: &LineIndex,
    key_lines: &[(usize, usize)],
    spans: &mut Vec<(usize, usize)>,
    out: &mut Vec<Finding>,
) {
    for &(key_line, key_index) in key_lines {
        let first = key_line.saturating_sub(AWS_SECRET_WINDOW).max(1);
        for line in first..=key_line + AWS_SECRET_WINDOW {
            let Some((start, content)) = lines.line(text, line) else {
                break;
            };
            if !SECRET_WORD.is_match(content) {
                continue;
            }
            for caps in AWS_SECRET.captures_iter(content) {
                let Some(m) = caps.get(1) else { continue };
                let value = m.as_str();
                if shannon_entropy(value) < 4.0
                    || overlaps(spans, start + m.start(), start + m.end())
                {
                    continue;
                }
                spans.push((start + m.start(), start + m.end()));
                if let Some(FindingKind::HardcodedCredential(c)) =
                    out.get_mut(key_index).map(|f| &mut f.kind)
                {
                    let d = c.detail.take().unwrap_or_default();
                    c.detail = Some(format!("{d}; secret access key on line {line}"));
                }
                out.push(credential(
                    display,
                    line,
                    "aws",
                    "AWS secret access key",
                    value,
                    false,
                    Some(format!("paired with the access key id on line {key_line}")),
                ));
            }
        }
    }
}

/// PEM private key blocks with a body and a matching END line. The body
/// (base64, with literal `\n` escapes removed) is the secret.
fn pem_keys(
    display: &str,
    text: &str,
    lines: &LineIndex,
    spans: &mut Vec<(usize, usize)>,
    out: &mut Vec<Finding>,
) {
    for caps in PEM_BEGIN.captures_iter(text) {
        let (Some(all), kind) = (caps.get(0), caps.get(1).map_or("", |m| m.as_str())) else {
            continue;
        };
        let end_marker = format!("-----END {kind}PRIVATE KEY-----");
        let Some(end_rel) = text[all.end()..].find(&end_marker) else {
            continue;
        };
        let raw = &text[all.end()..all.end() + end_rel];
        let body: String = raw
            .replace("\\n", "\n")
            .lines()
            .filter(|l| !l.contains(':'))
            .flat_map(|l| l.chars())
            .filter(|c| !c.is_whitespace() && *c != '"' && *c != '\'')
            .collect();
        let base64 = body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='));
        if body.len() < 40 || !base64 {
            continue;
        }
        spans.push((all.start(), all.end() + end_rel + end_marker.len()));
        let kind = kind.trim();
        let description = if kind.is_empty() {
            "private key (PEM)".to_owned()
        } else {
            format!("{kind} private key (PEM)")
        };
        out.push(credential(
            display,
            lines.line_of(all.start()),
            "private-key",
            &description,
            &body,
            false,
            None,
        ));
    }
}

/// Extensions of program source, where the generic finder wants a quoted
/// literal.
const CODE_EXTENSIONS: [&str; 18] = [
    "py", "js", "mjs", "cjs", "jsx", "ts", "mts", "cts", "tsx", "go", "rb", "java", "kt", "rs",
    "cs", "php", "swift", "scala",
];

/// `NAME = "value"` where NAME looks secret and the value is a high-entropy
/// literal, not a placeholder or a reference.
fn generic(
    display: &str,
    text: &str,
    lines: &LineIndex,
    spans: &[(usize, usize)],
    out: &mut Vec<Finding>,
) {
    // In program source a bare word after `=` is a variable, not a literal;
    // in .env, YAML, shell and JSON files bare values are the norm.
    let ext = display.rsplit_once('.').map_or("", |(_, e)| e);
    let source_code = CODE_EXTENSIONS.contains(&ext);
    for (idx, content) in text.split('\n').enumerate() {
        let line = idx + 1;
        let Some((start, _)) = lines.line(text, line) else {
            break;
        };
        for caps in GENERIC.captures_iter(content) {
            let (Some(name), Some(value)) = (caps.get(1), caps.get(3)) else {
                continue;
            };
            let after = content[value.end()..].chars().next();
            // A quoted value must end at its quote; a bare one at a
            // separator (or a quote around a whole URL or header).
            let closed = match caps.get(2).map(|q| q.as_str()) {
                Some(q) => after.is_some_and(|c| q.starts_with(c)),
                None if source_code => false,
                None => after.is_none_or(|c| {
                    c.is_whitespace() || matches!(c, ',' | ';' | '#' | '&' | '"' | '\'' | ')')
                }),
            };
            if !closed
                || NOT_SECRET_NAME.is_match(name.as_str())
                || overlaps(spans, start + value.start(), start + value.end())
                || !looks_random(value.as_str())
            {
                continue;
            }
            out.push(credential(
                display,
                line,
                "generic",
                "high-entropy secret assignment",
                value.as_str(),
                false,
                Some(format!("assigned to `{}`", name.as_str())),
            ));
        }
    }
}

/// True when `value` is a high-entropy literal rather than a placeholder,
/// a reference or a word.
pub(crate) fn looks_random(value: &str) -> bool {
    value.chars().count() >= GENERIC_MIN_LEN
        && !is_placeholder(value)
        && !DOTTED_IDENT.is_match(value)
        && !ENV_NAME.is_match(value)
        && !WORDY.is_match(value)
        && char_classes(value) >= 2
        // Random strings of this length almost always hold a digit;
        // camelCase words (`challengePassword`) do not.
        && value.chars().any(|c| c.is_ascii_digit())
        && shannon_entropy(value) >= ENTROPY_THRESHOLD
}

/// True when any provider format matches within `value`.
pub(crate) fn provider_match(value: &str) -> bool {
    PROVIDER_RULES.iter().any(|r| r.re.is_match(value))
}

/// True when any provider format matches `value` or it looks random.
pub(crate) fn looks_like_secret(value: &str) -> bool {
    provider_match(value) || looks_random(value)
}

/// Obvious placeholders: `xxx`, `changeme`, `your-key-here`, `<...>`, `${...}`.
pub(crate) fn is_placeholder(value: &str) -> bool {
    const WORDS: [&str; 17] = [
        "xxxx",
        "changeme",
        "change_me",
        "change-me",
        "placeholder",
        "your_",
        "your-",
        "yourkey",
        "insert",
        "replace",
        "redacted",
        "dummy",
        "****",
        "...",
        "${",
        "{{",
        "<",
    ];
    let lower = value.to_ascii_lowercase();
    WORDS.iter().any(|w| lower.contains(w))
        || value
            .chars()
            .all(|c| c == '*' || c == 'x' || c == 'X' || c == '0')
}

fn char_classes(value: &str) -> usize {
    [
        value.chars().any(|c| c.is_ascii_lowercase()),
        value.chars().any(|c| c.is_ascii_uppercase()),
        value.chars().any(|c| c.is_ascii_digit()),
    ]
    .iter()
    .filter(|b| **b)
    .count()
}

fn overlaps(spans: &[(usize, usize)], start: usize, end: usize) -> bool {
    spans.iter().any(|&(s, e)| start < e && s < end)
}

/// Shannon entropy of `s` in bits per character.
pub fn shannon_entropy(s: &str) -> f64 {
    let mut counts = std::collections::HashMap::new();
    let mut n = 0usize;
    for c in s.chars() {
        *counts.entry(c).or_insert(0usize) += 1;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    let n = n as f64;
    counts
        .values()
        .map(|&k| {
            let p = k as f64 / n;
            -p * p.log2()
        })
        .sum()
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The 6-character checksum GitHub appends to a token: CRC32 of the 30
/// random characters after the `gh?_` prefix, in base62 (`0-9A-Za-z`),
/// left-padded with `0`.
pub fn github_checksum(random_part: &str) -> String {
    let mut n = crc32fast::hash(random_part.as_bytes());
    let mut digits = [b'0'; 6];
    for slot in digits.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8_lossy(&digits).into_owned()
}

/// True when `token` is `gh[pousr]_` + 30 base62 characters + their checksum.
pub fn github_token_is_valid(token: &str) -> bool {
    let valid_prefix = ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"]
        .iter()
        .any(|p| token.starts_with(p));
    let Some(body) = token.get(4..) else {
        return false;
    };
    valid_prefix
        && body.len() == 36
        && body.chars().all(|c| c.is_ascii_alphanumeric())
        && body.get(..30).map(github_checksum).as_deref() == body.get(30..)
}

fn github_kind(token: &str) -> &'static str {
    match token.get(..4) {
        Some("ghp_") => "personal access token (classic)",
        Some("gho_") => "OAuth access token",
        Some("ghu_") => "GitHub App user-to-server token",
        Some("ghs_") => "GitHub App server-to-server token",
        _ => "refresh token",
    }
}

/// The 12-digit AWS account id encoded in an access key id (`AKIA…` or
/// `ASIA…` and 16 base32 characters): the 48 bits after the prefix, masked
/// with `0x7fffffffff80` and shifted right by 7. `None` when the key id is
/// malformed or the number has more than 12 digits.
pub fn aws_account_id(key_id: &str) -> Option<String> {
    let body = key_id.get(4..)?;
    if key_id.len() != 20 {
        return None;
    }
    let mut bits: u64 = 0;
    for c in body.chars().take(10) {
        let v = match c {
            'A'..='Z' => u64::from(c) - u64::from('A'),
            '2'..='7' => u64::from(c) - u64::from('2') + 26,
            _ => return None,
        };
        bits = (bits << 5) | v;
    }
    // 10 base32 characters are 50 bits; the first 6 bytes are the top 48.
    let z = bits >> 2;
    let account = (z & 0x7fff_ffff_ff80) >> 7;
    (account < 1_000_000_000_000).then(|| format!("{account:012}"))
}

/// Byte offsets of line starts, for offset → line number.
pub(crate) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub(crate) fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { starts }
    }

    /// 1-based line of a byte offset.
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset)
    }

    /// Start offset and content (without the newline) of a 1-based line.
    pub(crate) fn line<'t>(&self, text: &'t str, line: usize) -> Option<(usize, &'t str)> {
        let start = *self.starts.get(line.checked_sub(1)?)?;
        let end = self
            .starts
            .get(line)
            .map_or(text.len(), |&next| next.saturating_sub(1));
        Some((start, text.get(start..end)?))
    }
}
