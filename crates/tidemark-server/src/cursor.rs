//! Cursors of the paged lists: the sort key of the last item of a page, as JSON, in base64url.
//!
//! A key is a tuple of strings and numbers in the list's order (`(cluster, check_key)`,
//! `(opened_seq, id)`, ...). JSON's string escapes keep any string, NUL and all, apart from its
//! neighbours, so a key decodes to exactly the tuple it was made from, and the list resumes at
//! the first item whose key is greater. base64url keeps the cursor safe in a query string.
//! Decoding is strict: anything that is not a whole cursor of this list's shape is a 400 that
//! names the parameter.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// What a cursor looks like (the `next` of a page), for the OpenAPI document.
pub const CURSOR_PATTERN: &str = "^[A-Za-z0-9_-]*$";

/// The cursor of `key`.
pub(crate) fn encode<K: Serialize>(key: &K) -> String {
    let json = serde_json::to_vec(key).expect("sort keys are tuples of strings and numbers");
    URL_SAFE_NO_PAD.encode(json)
}

/// The key in `cursor`, given as the query parameter `param`.
pub(crate) fn decode<K: DeserializeOwned>(param: &str, cursor: &str) -> Result<K, ApiError> {
    let bad = |why: &str| {
        ApiError::bad_request(format!(
            "`{param}`: not a cursor this list gave out ({why}); pass the `next` of the previous page, or leave `{param}` out to start from the beginning"
        ))
    };
    let json = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad("not base64url"))?;
    serde_json::from_slice(&json).map_err(|_| bad("not a key of this list"))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn nul_and_separators_stay_inside_their_string() {
        let keys = [
            ("a\u{0}b".to_owned(), "c".to_owned()),
            ("a".to_owned(), "b\u{0}c".to_owned()),
            ("a".to_owned(), "\u{0}".to_owned()),
            (String::new(), String::new()),
        ];
        let cursors: Vec<String> = keys.iter().map(encode).collect();
        for (key, cursor) in keys.iter().zip(&cursors) {
            assert!(regex_like_pattern(cursor), "{cursor}");
            let back: (String, String) = decode("after", cursor).unwrap();
            assert_eq!(&back, key);
        }
        assert_ne!(cursors[0], cursors[1]);
    }

    #[test]
    fn malformed_cursors_are_refused_naming_the_parameter() {
        for bad in [
            "zz!",
            "61",
            "====",
            &encode(&("only one", 1, 2)),
            &encode(&"a string"),
        ] {
            let error = decode::<(String, String)>("after", bad).unwrap_err();
            assert!(
                error.message.contains("`after`"),
                "{bad}: {}",
                error.message
            );
        }
        // Bytes that are not UTF-8 never become a key.
        let not_utf8 = URL_SAFE_NO_PAD.encode([b'[', b'"', 0xff, b'"', b',', b'"', b'"', b']']);
        assert!(decode::<(String, String)>("after", &not_utf8).is_err());
    }

    /// `CURSOR_PATTERN` without a regex engine: base64url's alphabet.
    fn regex_like_pattern(cursor: &str) -> bool {
        cursor
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }

    /// Any key comes back from its cursor, and cursors keep the order of their keys.
    #[test]
    fn any_key_round_trips_and_keeps_its_order() {
        let key = || (any::<String>(), any::<String>());
        crate::property::assert_property("cursor", 2_000, (key(), key()), |(a, b)| {
            let back_a: (String, String) = decode("after", &encode(&a)).unwrap();
            let back_b: (String, String) = decode("after", &encode(&b)).unwrap();
            prop_assert_eq!(&back_a, &a);
            prop_assert_eq!(back_a.cmp(&back_b), a.cmp(&b));
            prop_assert!(regex_like_pattern(&encode(&a)));
            Ok(())
        });
    }
}
