//! `PathUtils.validatePath`: the rules every znode path must follow.

/// Checks a znode path the way upstream does, on UTF-16 code units. The error is the
/// message upstream's IllegalArgumentException carries.
pub fn validate_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("Path length must be > 0".into());
    }
    if !path.starts_with('/') {
        return Err("Path must start with / character".into());
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err("Path must not end with / character".into());
    }
    let chars: Vec<u16> = path.encode_utf16().collect();
    let mut lastc = b'/' as u16;
    let mut reason = None;
    for i in 1..chars.len() {
        let c = chars[i];
        if c == 0 {
            reason = Some(format!("null character not allowed @{i}"));
            break;
        } else if c == b'/' as u16 && lastc == b'/' as u16 {
            reason = Some(format!("empty node name specified @{i}"));
            break;
        } else if c == b'.' as u16 && lastc == b'.' as u16 {
            if chars[i - 2] == b'/' as u16 && (i + 1 == chars.len() || chars[i + 1] == b'/' as u16) {
                reason = Some(format!("relative paths not allowed @{i}"));
                break;
            }
        } else if c == b'.' as u16 {
            if chars[i - 1] == b'/' as u16 && (i + 1 == chars.len() || chars[i + 1] == b'/' as u16) {
                reason = Some(format!("relative paths not allowed @{i}"));
                break;
            }
        } else if (0x0001..=0x001f).contains(&c)
            || (0x007f..=0x009f).contains(&c)
            || (0xd800..=0xf8ff).contains(&c)
            || c >= 0xfff0
        {
            reason = Some(format!("invalid character @{i}"));
            break;
        }
        lastc = c;
    }
    match reason {
        Some(r) => Err(format!("Invalid path string \"{path}\" caused by {r}")),
        None => Ok(()),
    }
}

/// The parent of an absolute path ("" for children of the root, as upstream's
/// `substring(0, lastIndexOf('/'))`).
pub fn parent_of(path: &str) -> Option<&str> {
    path.rfind('/').map(|i| &path[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert!(validate_path("/").is_ok());
        assert!(validate_path("/a/b.c/..d").is_ok());
        assert!(validate_path("").is_err());
        assert!(validate_path("a").is_err());
        assert!(validate_path("/a/").is_err());
        assert!(validate_path("/a//b").is_err());
        assert!(validate_path("/a/./b").is_err());
        assert!(validate_path("/a/..").is_err());
        assert!(validate_path("/a\u{1}").is_err());
        assert!(validate_path("/a\u{1F600}").is_err());
        assert!(validate_path("/a\0b").is_err());
        assert_eq!(parent_of("/a"), Some(""));
        assert_eq!(parent_of("/a/b"), Some("/a"));
    }
}
