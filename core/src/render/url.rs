//! Values rendered into a task's URL are percent-encoded for the part of the URL they land in, so
//! a value can never change the URL's shape: `a/../admin?x=1` in a path stays one path segment,
//! `a&admin=true` in a query stays one value. The scheme, host and port must be written out in
//! the workflow (a template there is refused at registration): a value cannot choose where the
//! node sends its request.

/// Where a template stands in a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlPart {
    Path,
    Query,
    Fragment,
}

/// Why a URL template is refused at registration.
pub fn check_literal_origin(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("`{url}` must start with http:// or https:// (written out, not a template)"))?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    if authority.contains("{{") {
        return Err(format!(
            "`{url}`: the host and port must be written out; a template may stand only in the path, query or fragment"
        ));
    }
    if authority.is_empty() {
        return Err(format!("`{url}` has no host"));
    }
    if authority.contains('@') {
        return Err(format!("`{url}`: credentials in the URL are not allowed (use headers)"));
    }
    Ok(())
}

/// The part of the URL each template between `pieces` stands in (`pieces.len() - 1` answers).
pub fn parts(pieces: &[&str]) -> Vec<UrlPart> {
    let mut part = UrlPart::Path;
    let mut out = Vec::with_capacity(pieces.len().saturating_sub(1));
    for (i, piece) in pieces.iter().enumerate() {
        for c in piece.chars() {
            match (c, part) {
                ('?', UrlPart::Path) => part = UrlPart::Query,
                ('#', UrlPart::Path | UrlPart::Query) => part = UrlPart::Fragment,
                _ => {}
            }
        }
        if i + 1 < pieces.len() {
            out.push(part);
        }
    }
    out
}

/// `value` percent-encoded for `part`: everything but unreserved characters (`A-Z a-z 0-9 - . _
/// ~`) is encoded, and in a path a value of only dots (`.`, `..`) has its dots encoded too, so it
/// cannot climb the path.
pub fn encode(value: &str, part: UrlPart) -> String {
    let only_dots = !value.is_empty() && value.bytes().all(|b| b == b'.');
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'~')
            || (b == b'.' && !(only_dots && part == UrlPart::Path));
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_origin_must_be_written_out() {
        assert!(check_literal_origin("https://api.example.com:8443/v1/{{ params.id }}?q={{ params.q }}").is_ok());
        for bad in [
            "{{ params.url }}",
            "https://{{ params.host }}/x",
            "http://api.example.com:{{ params.port }}/x",
            "http://user:pw@api.example.com/x",
            "ftp://x/",
            "http:///x",
        ] {
            assert!(check_literal_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn each_value_is_encoded_for_its_part() {
        let pieces = ["https://h/a/", "/b?x=", "&y=1#", ""];
        assert_eq!(parts(&pieces), [UrlPart::Path, UrlPart::Query, UrlPart::Fragment]);
        assert_eq!(encode("a/../admin?x=1", UrlPart::Path), "a%2F..%2Fadmin%3Fx%3D1");
        assert_eq!(encode("..", UrlPart::Path), "%2E%2E");
        assert_eq!(encode("..", UrlPart::Query), "..");
        assert_eq!(encode("a&admin=true", UrlPart::Query), "a%26admin%3Dtrue");
        assert_eq!(encode("é #", UrlPart::Fragment), "%C3%A9%20%23");
        assert_eq!(encode("plain-1.2_~", UrlPart::Path), "plain-1.2_~");
    }
}
