//! The knowledge base's input parsers: a Markdown article with front matter
//! (`parley_cases::kb::parse_markdown`, the import of a folder of articles) and a
//! customer's question (`parley_knowledge::answer::answer`, what web-chat visitors send
//! the bot), on arbitrary text.
//!
//! Properties: neither panics; a parsed article that validates has a slug of
//! `[a-z0-9-]`; an answer either hands off (with a reason and no citation) or cites
//! exactly one article of the index and quotes only its lines.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use parley_cases::kb::{DEMO_ARTICLES, PublishedArticle, parse_markdown, validate};
use parley_knowledge::ArticleIndex;
use parley_knowledge::answer::{DEFAULT_MIN_COVERAGE, Signals, answer};

fn index() -> &'static ArticleIndex {
    static INDEX: OnceLock<ArticleIndex> = OnceLock::new();
    INDEX.get_or_init(|| {
        let arts = DEMO_ARTICLES
            .iter()
            .filter_map(|(_, t)| validate(&parse_markdown(t).ok()?).ok())
            .map(|a| PublishedArticle {
                slug: a.slug,
                title: a.title,
                body: a.body,
                tags: a.tags,
                version: 1,
            })
            .collect();
        ArticleIndex::build(arts).expect("the demo articles index")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(a) = parse_markdown(text).and_then(|a| validate(&a)) {
        assert!(a.slug.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
    }
    let idx = index();
    let a = answer(idx, text, Signals::default(), None, DEFAULT_MIN_COVERAGE).expect("answer");
    if a.handoff {
        assert!(a.reason.is_some() && a.citations.is_empty());
    } else {
        assert_eq!(a.citations.len(), 1);
        let doc = idx
            .docs()
            .iter()
            .find(|d| d.article.slug == a.citations[0].slug)
            .expect("a cited article of the index");
        let body = doc.article.body.replace("**", "").replace('`', "");
        for line in a.answer.lines() {
            assert!(body.contains(line), "{line:?} is not the article's");
        }
    }
});
