//! Properties of the SSRF address rules, binding-rule matching, claim
//! flattening and the SPIFFE bundle and join-token parsers.

use std::net::{IpAddr, Ipv4Addr};

use mandate_attest::binding::{ClaimMatch, MatchOp, glob};
use mandate_attest::fetch::{FetchError, check_url, is_internal};
use mandate_attest::oidc::flatten;
use mandate_attest::{join_token, spiffe};
use proptest::prelude::*;

proptest! {
    #[test]
    fn ipv4_mapped_and_compatible_forms_classify_like_the_ipv4_address(a in any::<u32>()) {
        let v4 = Ipv4Addr::from(a);
        let internal = is_internal(IpAddr::V4(v4));
        prop_assert_eq!(is_internal(IpAddr::V6(v4.to_ipv6_mapped())), internal);
        // The numeric URL forms are the same host as the dotted one.
        for host in [a.to_string(), format!("{a:#x}"), v4.to_string()] {
            let refused = matches!(
                check_url(&format!("https://{host}/jwks"), false),
                Err(FetchError::PrivateTarget { .. })
            );
            prop_assert_eq!(refused, internal, "{}", host);
        }
    }

    #[test]
    fn globs_match_what_they_contain(pre in "[a-z/]{0,8}", mid in "[a-z]{0,8}", post in "[a-z-]{0,8}") {
        let text = format!("{pre}{mid}{post}");
        let around = format!("*{mid}*");
        let prefix = format!("{pre}*");
        prop_assert!(glob(&around, &text));
        prop_assert!(glob(&prefix, &text));
        prop_assert!(glob(&"?".repeat(text.chars().count()), &text));
        prop_assert!(glob(&text, &text));
    }

    #[test]
    fn claim_matches_round_trip_through_their_text(claim in "[a-z][a-z.]{0,20}", value in "[a-zA-Z0-9:/*.-]{1,30}", exact in any::<bool>()) {
        let op = if exact { '=' } else { '~' };
        let m = ClaimMatch::parse(&format!("{claim}{op}{value}")).unwrap();
        prop_assert_eq!(m.op, if exact { MatchOp::Exact } else { MatchOp::Glob });
        prop_assert_eq!(ClaimMatch::parse(&m.to_string()).unwrap(), m);
    }

    #[test]
    fn flattening_never_panics_and_keeps_top_level_strings(k in "[a-z]{1,8}", v in ".{0,20}", depth in 0usize..40) {
        let mut nested = serde_json::json!(v.clone());
        for _ in 0..depth {
            nested = serde_json::json!({ "x": nested });
        }
        let key = format!("c{k}");
        let map = serde_json::json!({ key.clone(): v.clone(), "n": nested });
        let flat = flatten(map.as_object().unwrap());
        prop_assert_eq!(flat.get(&key), Some(&v));
    }

    #[test]
    fn bundle_and_join_token_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = spiffe::parse_bundle(&bytes);
        let _ = join_token::parse(&bytes);
    }
}
