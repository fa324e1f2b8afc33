//! The page, embedded in the binary: hand-written HTML, JavaScript and CSS
//! in `assets/`, with no build step (nothing to fetch, nothing to bundle).

pub const INDEX_HTML: &str = include_str!("assets/index.html");
pub const APP_JS: &str = include_str!("assets/app.js");
pub const STYLE_CSS: &str = include_str!("assets/style.css");
