//! The peerlet header: the first line of a peerlet's Lua source, naming the
//! peerlet, its app type and its version.
//!
//! The header lives *inside* the signed file, so the signature covers it:
//! whoever changes the name, the type or the version breaks the signature.
//! Its grammar (ABNF, RFC 5234):
//!
//! ```text
//! header   = "--@peerlet" 1*(WS field) *WS [CR] (LF / end-of-file)
//! field    = "name=" NAME / "type=" TYPE / "version=" VERSION
//! NAME     = 1*32( %x61-7A / DIGIT / "_" / "-" )   ; a-z 0-9 _ -
//! TYPE     = "end-node" / "per-hop"                 ; default end-node
//! VERSION  = %x31-39 *DIGIT                         ; 1 ..= 4294967295, default 1
//! WS       = SP / HTAB
//! ```
//!
//! Fields come in any order, each at most once; `name` is required. Unknown
//! fields are refused rather than ignored, so a typo (`verison=2`) does not
//! silently fall back to a default. The header must be the very first line:
//! no byte-order mark, no blank line, no shebang before it.
//!
//! # Examples
//! ```
//! use peerlet::package::header::PeerletHeader;
//! use peerlet::wire::AppType;
//!
//! let h = PeerletHeader::parse("--@peerlet name=dht type=per-hop version=3\nlocal P = {}\n")?;
//! assert_eq!((h.name.as_str(), h.app_type, h.version), ("dht", AppType::PerHop, 3));
//! assert_eq!(h.to_string(), "--@peerlet name=dht type=per-hop version=3");
//! # Ok::<(), peerlet::package::header::HeaderError>(())
//! ```

use std::fmt;

use crate::wire::AppType;

/// What every peerlet source starts with.
pub const HEADER_PREFIX: &str = "--@peerlet";

/// Longest peerlet name, in bytes.
pub const MAX_NAME_LEN: usize = 32;

/// The signed facts about a peerlet, read from its first line.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PeerletHeader {
    /// `[a-z0-9_-]{1,32}`; with the publisher key it makes the app id.
    pub name: String,
    pub app_type: AppType,
    /// At least 1. A higher version of the same app replaces a lower one.
    pub version: u32,
}

/// Why a source's first line is not a valid peerlet header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("missing header: the first line must start with `--@peerlet name=NAME`")]
    Missing,
    #[error("header has no `name=` field")]
    MissingName,
    #[error("header field `{0}` is not of the form key=value")]
    NotKeyValue(String),
    #[error("header field `{0}` is unknown (known: name, type, version)")]
    UnknownField(String),
    #[error("header field `{0}` appears twice")]
    DuplicateField(String),
    #[error("peerlet name `{0}` is invalid: 1 to 32 of a-z, 0-9, `_`, `-`")]
    BadName(String),
    #[error("app type `{0}` is invalid: end-node or per-hop")]
    BadType(String),
    #[error(
        "version `{0}` is invalid: a positive integer without leading zeros, at most 4294967295"
    )]
    BadVersion(String),
}

impl PeerletHeader {
    /// A header with the defaults for everything but the name.
    pub fn new(name: &str) -> Result<PeerletHeader, HeaderError> {
        check_name(name)?;
        Ok(PeerletHeader {
            name: name.to_string(),
            app_type: AppType::EndNode,
            version: 1,
        })
    }

    /// Reads the header from the first line of `source` (the whole source may
    /// be passed; only its first line is read).
    pub fn parse(source: &str) -> Result<PeerletHeader, HeaderError> {
        let line = source.split('\n').next().unwrap_or("");
        let line = line.strip_suffix('\r').unwrap_or(line);
        let rest = line
            .strip_prefix(HEADER_PREFIX)
            .ok_or(HeaderError::Missing)?;
        if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
            return Err(HeaderError::Missing);
        }
        parse_fields(rest)
    }

    /// The fields as they appear after the prefix, in canonical order:
    /// `name=dht type=end-node version=3`. Also used in the trusted comment.
    pub fn fields(&self) -> String {
        format!(
            "name={} type={} version={}",
            self.name, self.app_type, self.version
        )
    }
}

/// Parses whitespace-separated `key=value` fields (a header after its prefix,
/// or the `peerlet` part of a trusted comment).
pub(crate) fn parse_fields(text: &str) -> Result<PeerletHeader, HeaderError> {
    let mut name = None;
    let mut app_type = None;
    let mut version = None;
    for field in text.split([' ', '\t']).filter(|f| !f.is_empty()) {
        let (key, value) = field
            .split_once('=')
            .ok_or_else(|| HeaderError::NotKeyValue(field.to_string()))?;
        let duplicate = match key {
            "name" => name.replace(check_name(value)?.to_string()).is_some(),
            "type" => app_type.replace(parse_type(value)?).is_some(),
            "version" => version.replace(parse_version(value)?).is_some(),
            _ => return Err(HeaderError::UnknownField(key.to_string())),
        };
        if duplicate {
            return Err(HeaderError::DuplicateField(key.to_string()));
        }
    }
    Ok(PeerletHeader {
        name: name.ok_or(HeaderError::MissingName)?,
        app_type: app_type.unwrap_or(AppType::EndNode),
        version: version.unwrap_or(1),
    })
}

fn check_name(name: &str) -> Result<&str, HeaderError> {
    let ok = (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(name)
    } else {
        Err(HeaderError::BadName(name.to_string()))
    }
}

fn parse_type(value: &str) -> Result<AppType, HeaderError> {
    value
        .parse()
        .map_err(|_| HeaderError::BadType(value.to_string()))
}

fn parse_version(value: &str) -> Result<u32, HeaderError> {
    let bad = || HeaderError::BadVersion(value.to_string());
    if value.starts_with('0') || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    value.parse::<u32>().map_err(|_| bad())
}

impl fmt::Display for PeerletHeader {
    /// The canonical header line, without its line end.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{HEADER_PREFIX} {}", self.fields())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<PeerletHeader, HeaderError> {
        PeerletHeader::parse(s)
    }

    #[test]
    fn defaults_are_end_node_version_1() {
        let h = parse("--@peerlet name=hello\nreturn {}\n").unwrap();
        assert_eq!(h, PeerletHeader::new("hello").unwrap());
        assert_eq!((h.app_type, h.version), (AppType::EndNode, 1));
    }

    #[test]
    fn fields_in_any_order_with_tabs_and_crlf() {
        let h = parse("--@peerlet\tversion=12  type=per-hop\tname=a_b-9 \r\nx").unwrap();
        assert_eq!(h.name, "a_b-9");
        assert_eq!(h.app_type, AppType::PerHop);
        assert_eq!(h.version, 12);
    }

    #[test]
    fn source_without_body_is_fine() {
        assert_eq!(parse("--@peerlet name=x").unwrap().name, "x");
    }

    #[test]
    fn display_round_trips() {
        let h = parse("--@peerlet type=per-hop name=dht version=3").unwrap();
        assert_eq!(parse(&h.to_string()).unwrap(), h);
        assert_eq!(parse_fields(&h.fields()).unwrap(), h);
    }

    #[test]
    fn header_must_be_the_first_line() {
        assert_eq!(parse(""), Err(HeaderError::Missing));
        assert_eq!(parse("\n--@peerlet name=x"), Err(HeaderError::Missing));
        assert_eq!(parse("-- @peerlet name=x"), Err(HeaderError::Missing));
        assert_eq!(
            parse("\u{feff}--@peerlet name=x"),
            Err(HeaderError::Missing)
        );
        assert_eq!(parse("--@peerletname=x"), Err(HeaderError::Missing));
        assert_eq!(
            parse("local x = 1 --@peerlet name=x"),
            Err(HeaderError::Missing)
        );
    }

    #[test]
    fn name_is_required() {
        assert_eq!(parse("--@peerlet"), Err(HeaderError::MissingName));
        assert_eq!(
            parse("--@peerlet type=per-hop version=2"),
            Err(HeaderError::MissingName)
        );
    }

    #[test]
    fn bad_names_are_refused() {
        let long = "a".repeat(MAX_NAME_LEN + 1);
        for name in ["", "Dht", "d.h", "dht!", "dé", long.as_str()] {
            let err = parse(&format!("--@peerlet name={name}")).unwrap_err();
            assert_eq!(err, HeaderError::BadName(name.to_string()), "{name:?}");
        }
        assert!(parse(&format!("--@peerlet name={}", "a".repeat(MAX_NAME_LEN))).is_ok());
    }

    #[test]
    fn bad_types_are_refused() {
        for t in ["", "endnode", "End-Node", "per_hop"] {
            let err = parse(&format!("--@peerlet name=x type={t}")).unwrap_err();
            assert_eq!(err, HeaderError::BadType(t.to_string()));
        }
    }

    #[test]
    fn bad_versions_are_refused() {
        for v in ["", "0", "01", "-1", "+1", "1.0", "x", "4294967296"] {
            let err = parse(&format!("--@peerlet name=x version={v}")).unwrap_err();
            assert_eq!(err, HeaderError::BadVersion(v.to_string()), "{v:?}");
        }
        assert_eq!(
            parse("--@peerlet name=x version=4294967295")
                .unwrap()
                .version,
            u32::MAX
        );
    }

    #[test]
    fn unknown_duplicate_and_bare_fields_are_refused() {
        assert_eq!(
            parse("--@peerlet name=x verison=2"),
            Err(HeaderError::UnknownField("verison".into()))
        );
        assert_eq!(
            parse("--@peerlet name=x name=y"),
            Err(HeaderError::DuplicateField("name".into()))
        );
        assert_eq!(
            parse("--@peerlet name=x dht"),
            Err(HeaderError::NotKeyValue("dht".into()))
        );
    }
}
