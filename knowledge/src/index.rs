//! The search index of one tenant's published articles: tantivy BM25 over title, tags
//! and body (English stemming), in memory, plus what answers need — every article's
//! stemmed terms (to measure how much of a question an article covers) and its lines
//! (the passages an answer is extracted from).

use std::collections::{HashMap, HashSet};

use parley_cases::kb::PublishedArticle;
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, INDEXED, IndexRecordOption, STORED, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Index, IndexReader, TantivyDocument, Term};

use crate::{Error, Result};

/// Words that carry no topic in a customer's question (on top of English stop words).
const STOP: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these",
    "they", "this", "to", "was", "will", "with", "i", "me", "my", "mine", "we", "our", "you",
    "your", "how", "do", "does", "did", "can", "could", "would", "should", "what", "where", "when",
    "which", "who", "why", "is", "am", "have", "has", "had", "please", "hi", "hello", "help",
    "want", "need", "get", "so", "some", "any", "about", "from", "up", "out", "s", "t", "m", "don",
    "dont", "im", "ive", "its", "there", "here", "just", "also", "much", "many", "long", "find",
    "tell", "know", "way", "ways", "thank", "thanks",
];

/// One article in the index.
#[derive(Debug, Clone)]
pub struct Doc {
    /// The published article.
    pub article: PublishedArticle,
    /// Its stemmed terms (title, tags, body).
    terms: HashSet<String>,
    /// Its lines with their stemmed terms: the passages answers are made of.
    lines: Vec<(String, HashSet<String>)>,
}

/// A ranked search result.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Position in `ArticleIndex::docs`.
    pub doc: usize,
    /// BM25 score (title ×2, tags ×1.5, body ×1).
    pub score: f32,
}

/// A question analysed against the index: its topic terms with their weights.
#[derive(Debug, Clone, Default)]
pub struct Analysed {
    /// Distinct stemmed topic terms with their IDF over the articles (a term no article
    /// has gets the largest IDF: it is what the knowledge base does not know).
    pub terms: Vec<(String, f32)>,
}

/// The index of one tenant's published articles.
pub struct ArticleIndex {
    docs: Vec<Doc>,
    index: Index,
    reader: IndexReader,
    analyzer: TextAnalyzer,
    title: Field,
    tags: Field,
    body: Field,
    ord: Field,
    df: HashMap<String, usize>,
}

impl std::fmt::Debug for ArticleIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArticleIndex")
            .field("articles", &self.docs.len())
            .finish()
    }
}

fn plain(md: &str) -> String {
    md.replace("**", "").replace('`', "")
}

impl ArticleIndex {
    /// Builds the index of `articles` (in memory).
    pub fn build(articles: Vec<PublishedArticle>) -> Result<ArticleIndex> {
        let mut sb = Schema::builder();
        let text = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("en_stem")
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        let title = sb.add_text_field("title", text.clone());
        let tags = sb.add_text_field("tags", text.clone());
        let body = sb.add_text_field("body", text);
        let ord = sb.add_u64_field("ord", INDEXED | STORED);
        let index = Index::create_in_ram(sb.build());
        let mut analyzer = index
            .tokenizers()
            .get("en_stem")
            .ok_or(Error::Tokenizer("en_stem"))?;
        let mut writer: tantivy::IndexWriter = index.writer_with_num_threads(1, 15_000_000)?;
        let mut docs = Vec::with_capacity(articles.len());
        let mut df: HashMap<String, usize> = HashMap::new();
        for (i, a) in articles.into_iter().enumerate() {
            let body_text = plain(&a.body);
            let mut d = TantivyDocument::default();
            d.add_text(title, &a.title);
            d.add_text(tags, a.tags.join(" "));
            d.add_text(body, &body_text);
            d.add_u64(ord, i as u64);
            writer.add_document(d)?;
            let all = format!("{} {} {}", a.title, a.tags.join(" "), body_text);
            let terms = stems(&mut analyzer, &all);
            for t in &terms {
                *df.entry(t.clone()).or_default() += 1;
            }
            let lines = body_text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|l| (l.to_owned(), stems(&mut analyzer, l)))
                .collect();
            docs.push(Doc {
                article: a,
                terms,
                lines,
            });
        }
        writer.commit()?;
        let reader = index.reader()?;
        Ok(ArticleIndex {
            docs,
            index,
            reader,
            analyzer,
            title,
            tags,
            body,
            ord,
            df,
        })
    }

    /// The indexed articles.
    pub fn docs(&self) -> &[Doc] {
        &self.docs
    }

    /// The topic terms of `question` with their IDF.
    pub fn analyse(&self, question: &str) -> Analysed {
        let mut analyzer = self.analyzer.clone();
        let n = self.docs.len() as f32;
        let mut seen = HashSet::new();
        let mut terms = Vec::new();
        for word in question
            .split(|c: char| !c.is_alphanumeric() && c != '-')
            .flat_map(|w| w.split('-'))
            .filter(|w| !w.is_empty())
            .take(200)
        {
            let lw = word.to_lowercase();
            if STOP.contains(&lw.as_str()) {
                continue;
            }
            for t in stems(&mut analyzer, &lw) {
                if seen.insert(t.clone()) {
                    let df = self.df.get(&t).copied().unwrap_or(0) as f32;
                    let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
                    terms.push((t, idf));
                }
            }
        }
        // Joined words ("wifi" for "wi-fi", "sign in" and "signin" alike).
        let joined: String = question
            .to_lowercase()
            .split(|c: char| c.is_whitespace())
            .filter(|w| w.contains('-'))
            .map(|w| w.replace('-', ""))
            .collect::<Vec<_>>()
            .join(" ");
        for t in stems(&mut analyzer, &joined) {
            if self.df.contains_key(&t) && seen.insert(t.clone()) {
                let df = self.df.get(&t).copied().unwrap_or(0) as f32;
                terms.push((t, (1.0 + (n - df + 0.5) / (df + 0.5)).ln()));
            }
        }
        Analysed { terms }
    }

    /// BM25 ranking of the articles for the analysed question (at most `limit`).
    pub fn search(&self, q: &Analysed, limit: usize) -> Result<Vec<Hit>> {
        if q.terms.is_empty() || self.docs.is_empty() {
            return Ok(vec![]);
        }
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for (t, _) in &q.terms {
            for (field, boost) in [(self.title, 2.0), (self.tags, 1.5), (self.body, 1.0)] {
                let tq = TermQuery::new(
                    Term::from_field_text(field, t),
                    IndexRecordOption::WithFreqs,
                );
                clauses.push((
                    Occur::Should,
                    Box::new(BoostQuery::new(Box::new(tq), boost)),
                ));
            }
        }
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let top = searcher.search(&query, &TopDocs::with_limit(limit.max(1)).order_by_score())?;
        let mut out = Vec::with_capacity(top.len());
        for (score, addr) in top {
            let d: TantivyDocument = searcher.doc(addr)?;
            let Some(ord) = d.get_first(self.ord).and_then(|v| v.as_u64()) else {
                continue;
            };
            out.push(Hit {
                doc: ord as usize,
                score,
            });
        }
        Ok(out)
    }

    /// How much of the question article `doc` covers: the IDF-weighted share of the
    /// question's topic terms found in it (0 to 1). A question about something the
    /// knowledge base never mentions scores low however well one word matches.
    pub fn coverage(&self, q: &Analysed, doc: usize) -> f32 {
        let Some(d) = self.docs.get(doc) else {
            return 0.0;
        };
        let total: f32 = q.terms.iter().map(|(_, w)| w).sum();
        if total <= 0.0 {
            return 0.0;
        }
        let hit: f32 = q
            .terms
            .iter()
            .filter(|(t, _)| d.terms.contains(t))
            .map(|(_, w)| w)
            .sum();
        hit / total
    }

    /// The lines of article `doc` that best answer the question, in the article's
    /// order: the best-scoring line and its neighbours while they are steps of the same
    /// list, at most `max_lines`; the whole body when it is short.
    pub fn passage(&self, q: &Analysed, doc: usize, max_chars: usize) -> Vec<String> {
        let Some(d) = self.docs.get(doc) else {
            return vec![];
        };
        let lines: Vec<&(String, HashSet<String>)> = d
            .lines
            .iter()
            .filter(|(l, _)| !crate::answer::looks_injected(l))
            .collect();
        let total: usize = lines.iter().map(|(l, _)| l.len() + 1).sum();
        if total <= max_chars {
            return lines.iter().map(|(l, _)| l.clone()).collect();
        }
        let score = |terms: &HashSet<String>| -> f32 {
            q.terms
                .iter()
                .filter(|(t, _)| terms.contains(t))
                .map(|(_, w)| w)
                .sum()
        };
        let mut order: Vec<usize> = (0..lines.len()).collect();
        order.sort_by(|a, b| {
            score(&lines[*b].1)
                .partial_cmp(&score(&lines[*a].1))
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(a.cmp(b))
        });
        let mut chosen = Vec::new();
        let mut used = 0;
        for i in order {
            let len = lines[i].0.len() + 1;
            if used + len > max_chars && !chosen.is_empty() {
                break;
            }
            used += len;
            chosen.push(i);
        }
        chosen.sort_unstable();
        chosen.into_iter().map(|i| lines[i].0.clone()).collect()
    }

    /// The underlying tantivy index (for its statistics).
    pub fn tantivy(&self) -> &Index {
        &self.index
    }
}

fn stems(analyzer: &mut TextAnalyzer, text: &str) -> HashSet<String> {
    let mut out = HashSet::new();
    let mut stream = analyzer.token_stream(text);
    while let Some(tok) = stream.next() {
        if !STOP.contains(&tok.text.as_str()) {
            out.insert(tok.text.clone());
        }
    }
    out
}
