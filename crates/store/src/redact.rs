//! Database URLs made safe to show: passwords replaced by `***`.

use url::Url;

/// What a password is replaced with.
const MASK: &str = "***";

/// `url` with any password (in the user part or a `password=` query parameter) replaced by
/// `***`. Works on strings that are not valid URLs too, so a bad URL can still be named in an
/// error message.
pub fn redact_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(parsed) => redact_parsed(parsed),
        Err(_) => redact_unparsed(url),
    }
}

/// Masks the password of a URL that parsed.
fn redact_parsed(mut url: Url) -> String {
    if url.password().is_some() {
        // Only URLs that cannot carry credentials refuse a password, and they have none.
        let _ = url.set_password(Some(MASK));
    }
    let has_password_parameter = url
        .query_pairs()
        .any(|(key, _)| key.eq_ignore_ascii_case("password"));
    if has_password_parameter {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(key, value)| {
                let value = if key.eq_ignore_ascii_case("password") {
                    MASK.to_owned()
                } else {
                    value.into_owned()
                };
                (key.into_owned(), value)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

/// Masks what looks like a password in a string that is not a valid URL.
fn redact_unparsed(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return mask_password_parameter(url);
    };
    let shown = match rest.rfind('@') {
        Some(at) => {
            let (user_info, host_and_rest) = rest.split_at(at);
            match user_info.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:{MASK}{host_and_rest}"),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    };
    mask_password_parameter(&shown)
}

/// Masks the value of every `password=` parameter in a query string, case-insensitively.
fn mask_password_parameter(text: &str) -> String {
    let Some((before, query)) = text.split_once('?') else {
        return text.to_owned();
    };
    let masked: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}={MASK}"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{before}?{}", masked.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_the_password_in_the_user_part() {
        assert_eq!(
            redact_url("postgres://lrs:s3cret@db.example:5432/lrs"),
            "postgres://lrs:***@db.example:5432/lrs"
        );
    }

    #[test]
    fn leaves_urls_without_password_alone() {
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1:5432/test"),
            "postgres://postgres@127.0.0.1:5432/test"
        );
        assert_eq!(redact_url(""), "");
    }

    #[test]
    fn masks_password_query_parameters() {
        let shown = redact_url("postgres://db/lrs?user=lrs&Password=s3cret&sslmode=require");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("sslmode=require"), "{shown}");
    }

    #[test]
    fn masks_passwords_in_strings_that_do_not_parse() {
        let shown = redact_url("postgres://lrs:s3cret@db:port/lrs?password=other");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(!shown.contains("other"), "{shown}");
        assert!(
            shown.starts_with("postgres://lrs:***@db:port/lrs"),
            "{shown}"
        );
    }
}
