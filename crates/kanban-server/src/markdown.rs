//! Task bodies and comments as HTML the dashboard can insert as is:
//! CommonMark rendered by pulldown-cmark with raw HTML shown as text (as
//! the Hermes dashboard does: it escapes the source before rendering), so
//! no tag or attribute of the author's ever reaches the page. Links and
//! images keep only web URLs (`http`, `https`, `mailto`, or relative);
//! any other scheme (`javascript:`, `data:`, …) leaves just the text.
//! Every link gets `rel="noopener noreferrer"`.

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd, html};
use pulldown_cmark_escape::{escape_href, escape_html};

/// `rel` put on every link, so a linked page cannot reach back.
const LINK_REL: &str = "noopener noreferrer";

/// URL schemes a link or image may use; a URL without a scheme is relative.
const ALLOWED_SCHEMES: [&str; 3] = ["http", "https", "mailto"];

/// Whether `url` is relative or uses an allowed scheme. Browsers drop
/// ASCII whitespace and control characters inside a scheme
/// (`java\tscript:`), so they are dropped here too before comparing.
fn is_allowed_url(url: &str) -> bool {
    let Some(colon) = url.find(':') else {
        return true;
    };
    let head = &url[..colon];
    if head.contains(['/', '?', '#']) {
        return true; // the colon is in a path, query or fragment
    }
    let scheme: String = head
        .chars()
        .filter(|c| !c.is_ascii_whitespace() && !c.is_ascii_control())
        .collect::<String>()
        .to_ascii_lowercase();
    ALLOWED_SCHEMES.contains(&scheme.as_str())
}

/// The opening tag of a link, written by us so it carries [`LINK_REL`].
fn link_open(dest: &str, title: &str) -> String {
    let mut tag = String::from("<a href=\"");
    let _ = escape_href(&mut tag, dest);
    if !title.is_empty() {
        tag.push_str("\" title=\"");
        let _ = escape_html(&mut tag, title);
    }
    tag.push_str("\" rel=\"");
    tag.push_str(LINK_REL);
    tag.push_str("\">");
    tag
}

/// The event stream with raw HTML turned into text and links and images
/// rewritten as described in the module docs.
fn safe_events<'a>(parser: Parser<'a>) -> impl Iterator<Item = Event<'a>> {
    // Per open link: whether its opening tag was written (and so needs `</a>`).
    let mut links: Vec<bool> = Vec::new();
    // Depth of open images whose URL was refused: their alt text stays.
    let mut refused_images = Vec::new();
    parser.filter_map(move |event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Some(Event::Text(raw)),
        Event::Start(Tag::Link {
            dest_url, title, ..
        }) => {
            let allowed = is_allowed_url(&dest_url);
            links.push(allowed);
            allowed.then(|| Event::InlineHtml(CowStr::from(link_open(&dest_url, &title))))
        }
        Event::End(TagEnd::Link) => links
            .pop()
            .unwrap_or(false)
            .then_some(Event::InlineHtml(CowStr::Borrowed("</a>"))),
        Event::Start(Tag::Image { ref dest_url, .. }) if !is_allowed_url(dest_url) => {
            refused_images.push(());
            None
        }
        Event::End(TagEnd::Image) if !refused_images.is_empty() => {
            refused_images.pop();
            None
        }
        other => Some(other),
    })
}

/// Safe HTML of a markdown text (see the module docs).
pub fn render_markdown(src: &str) -> String {
    let mut opts = Options::empty();
    opts.insert(Options::ENABLE_TABLES);
    opts.insert(Options::ENABLE_STRIKETHROUGH);
    opts.insert(Options::ENABLE_TASKLISTS);
    let mut out = String::with_capacity(src.len() * 3 / 2);
    html::push_html(&mut out, safe_events(Parser::new_ext(src, opts)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_renders_with_safe_links() {
        let html = render_markdown(
            "# Title\n\n**bold** [site](https://example.com \"The site\") <https://a.example/x?y=1&z=2>",
        );
        assert!(html.contains("<h1>Title</h1>"), "{html}");
        assert!(html.contains("<strong>bold</strong>"), "{html}");
        assert!(
            html.contains(
                r#"<a href="https://example.com" title="The site" rel="noopener noreferrer">site</a>"#
            ),
            "{html}"
        );
        assert!(
            html.contains(
                r#"<a href="https://a.example/x?y=1&amp;z=2" rel="noopener noreferrer">"#
            ),
            "{html}"
        );
        let relative = render_markdown("[doc](docs/a:b.md) [top](#top) ![pic](img.png)");
        assert!(relative.contains(r#"href="docs/a:b.md""#), "{relative}");
        assert!(relative.contains(r##"href="#top""##), "{relative}");
        assert!(
            relative.contains(r#"<img src="img.png" alt="pic" />"#),
            "{relative}"
        );
    }

    #[test]
    fn raw_html_is_text_as_in_the_reference() {
        assert_eq!(
            render_markdown("a <b>bold</b> claim"),
            "<p>a &lt;b&gt;bold&lt;/b&gt; claim</p>\n"
        );
        assert_eq!(
            render_markdown("<div onclick=\"x()\">\nhi\n</div>"),
            "&lt;div onclick=\"x()\"&gt;\nhi\n&lt;/div&gt;"
        );
    }

    #[test]
    fn script_and_hostile_urls_do_not_survive() {
        for evil in [
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "[x](javascript:alert(1))",
            "[x](JaVaScRiPt:alert(1))",
            "[x](java\tscript:alert(1))",
            "[x](&#106;avascript:alert(1))",
            "[x](<javascript:alert(1)>)",
            "<javascript:alert(1)>",
            "![x](javascript:alert(1))",
            "![x](data:text/html;base64,PHNjcmlwdD4=)",
            "[x](vbscript:msgbox)",
            "<a href=\"javascript:alert(1)\">x</a>",
            "<svg onload=alert(1)></svg>",
            "<iframe src=\"https://evil\"></iframe>",
            "[x](https://ok.example \"a\\\" onmouseover=\\\"alert(1)\")",
        ] {
            let out = render_markdown(evil).to_lowercase();
            for bad in [
                "<script",
                "<img",
                "<iframe",
                "<svg",
                "<a href=\"javascript:",
                "<a href=\"vbscript:",
                "<a href=\"data:",
                "\" onmouseover",
            ] {
                assert!(!out.contains(bad), "{evil:?} rendered {out:?}");
            }
        }
        assert_eq!(
            render_markdown("[click](javascript:alert(1))"),
            "<p>click</p>\n"
        );
        assert_eq!(
            render_markdown("![kitten](data:image/png;base64,AAAA) ok"),
            "<p>kitten ok</p>\n"
        );
    }

    #[test]
    fn url_schemes() {
        for ok in [
            "https://x",
            "http://x",
            "mailto:a@b",
            "HTTPS://X",
            "a/b:c",
            "?q=a:b",
            "#a:b",
            "plain",
        ] {
            assert!(is_allowed_url(ok), "{ok}");
        }
        for bad in [
            "javascript:x",
            " javascript:x",
            "data:x",
            "file:///etc",
            "ftp://x",
            "\u{1}javascript:x",
        ] {
            assert!(!is_allowed_url(bad), "{bad}");
        }
    }
}
