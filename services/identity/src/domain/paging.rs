//! Paging of every list: page sizes and opaque page tokens.
//!
//! A page token is the URL-safe base64 of the list's name and the sort key of the last item
//! returned, so the next page starts after it (keyset paging: no offsets, stable under
//! inserts). A token from another list, or one that does not decode, is refused.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::FieldViolation;

/// Page size when the request gives 0.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// Largest page size; larger requests are cut to it.
pub const MAX_PAGE_SIZE: usize = 1000;

/// A request's page: how many items, and the sort key to start after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Items to return.
    pub size: usize,
    /// The sort key of the last item of the previous page, its parts in order.
    pub after: Option<Vec<String>>,
}

/// Reads `page_size` and `page_token` of a request to the list `list` whose sort key has
/// `key_parts` parts; violations name the fields.
pub fn page(
    list: &str,
    key_parts: usize,
    page_size: i32,
    page_token: &str,
) -> Result<Page, Vec<FieldViolation>> {
    let mut violations = Vec::new();
    let size = match usize::try_from(page_size) {
        Ok(0) => DEFAULT_PAGE_SIZE,
        Ok(size) => size.min(MAX_PAGE_SIZE),
        Err(_) => {
            violations.push(FieldViolation::new("page_size", "must not be negative"));
            DEFAULT_PAGE_SIZE
        }
    };
    let after = match page_token {
        "" => None,
        token => {
            let key = decode(list, key_parts, token);
            if key.is_none() {
                violations.push(FieldViolation::new(
                    "page_token",
                    "is not a token from this list's previous page",
                ));
            }
            key
        }
    };
    if violations.is_empty() {
        Ok(Page { size, after })
    } else {
        Err(violations)
    }
}

/// The token that continues the list `list` after the item whose sort key is `key`.
pub fn token(list: &str, key: &[String]) -> String {
    let mut text = String::from(list);
    for part in key {
        text.push('\n');
        text.push_str(part);
    }
    URL_SAFE_NO_PAD.encode(text)
}

fn decode(list: &str, key_parts: usize, token: &str) -> Option<Vec<String>> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let mut parts = text.split('\n');
    if parts.next()? != list {
        return None;
    }
    let key: Vec<String> = parts.map(str::to_owned).collect();
    (key.len() == key_parts).then_some(key)
}

/// Splits the `size + 1` items fetched into the page and the next page's token, made from
/// the last item's sort key.
pub fn finish<T>(
    list: &str,
    mut items: Vec<T>,
    size: usize,
    key: impl Fn(&T) -> Vec<String>,
) -> (Vec<T>, String) {
    if items.len() > size {
        items.truncate(size);
        let next = items
            .last()
            .map(|last| token(list, &key(last)))
            .unwrap_or_default();
        (items, next)
    } else {
        (items, String::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_default_and_cap() {
        assert_eq!(
            page("users", 1, 0, "").map(|p| p.size),
            Ok(DEFAULT_PAGE_SIZE)
        );
        assert_eq!(
            page("users", 1, 5000, "").map(|p| p.size),
            Ok(MAX_PAGE_SIZE)
        );
        assert_eq!(page("users", 1, -1, "").unwrap_err()[0].field, "page_size");
    }

    #[test]
    fn tokens_round_trip_and_belong_to_their_list() {
        let key = vec!["Demo School".to_owned(), "id-1".to_owned()];
        let token = token("organisations", &key);
        let page = page("organisations", 2, 10, &token).expect("valid token");
        assert_eq!(page.after, Some(key));
        assert!(super::page("users", 2, 10, &token).is_err());
        assert!(super::page("organisations", 1, 10, &token).is_err());
        assert_eq!(
            super::page("users", 1, 10, "%%%").unwrap_err()[0].field,
            "page_token"
        );
    }

    #[test]
    fn finish_gives_a_token_only_when_more_remain() {
        let (items, next) = finish("n", vec![1, 2, 3], 2, |n| vec![n.to_string()]);
        assert_eq!(items, [1, 2]);
        assert_eq!(
            page("n", 1, 2, &next).expect("valid").after,
            Some(vec!["2".into()])
        );
        let (items, next) = finish("n", vec![1, 2], 2, |n| vec![n.to_string()]);
        assert_eq!(items.len(), 2);
        assert!(next.is_empty());
    }
}
