//! Task bodies and comments as HTML the dashboard can insert as is:
//! CommonMark rendered by pulldown-cmark, then sanitized by ammonia with
//! an allow-list (no script, no event handlers, no `javascript:` or other
//! non-web URL schemes, `rel="noopener noreferrer"` on every link).
//! Sanitizing after rendering also covers raw HTML inside the markdown.

use std::sync::LazyLock;

use pulldown_cmark::{Options, Parser, html};

/// `rel` put on every link, so a linked page cannot reach back.
const LINK_REL: &str = "noopener noreferrer";

static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut b = ammonia::Builder::default();
    b.link_rel(Some(LINK_REL));
    b
});

/// Sanitized HTML of a markdown text.
pub fn render_markdown(src: &str) -> String {
    let mut opts = Options::empty();
    opts.insert(Options::ENABLE_TABLES);
    opts.insert(Options::ENABLE_STRIKETHROUGH);
    opts.insert(Options::ENABLE_TASKLISTS);
    let mut raw = String::with_capacity(src.len() * 3 / 2);
    html::push_html(&mut raw, Parser::new_ext(src, opts));
    SANITIZER.clean(&raw).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_renders_and_script_does_not_survive() {
        let html = render_markdown("# Title\n\n**bold** [site](https://example.com)");
        assert!(html.contains("<h1>Title</h1>"), "{html}");
        assert!(html.contains("<strong>bold</strong>"), "{html}");
        assert!(
            html.contains(r#"<a href="https://example.com" rel="noopener noreferrer">site</a>"#),
            "{html}"
        );
        for evil in [
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "[x](javascript:alert(1))",
            "<a href=\"javascript:alert(1)\">x</a>",
            "<svg onload=alert(1)></svg>",
            "<iframe src=\"https://evil\"></iframe>",
        ] {
            let out = render_markdown(evil).to_lowercase();
            for bad in [
                "<script",
                "onerror",
                "onload",
                "javascript:",
                "<iframe",
                "<svg",
            ] {
                assert!(!out.contains(bad), "{evil:?} rendered {out:?}");
            }
        }
    }
}
